import type { LogLevel } from '@nestjs/common';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PinoLogger } from './pino.logger.js';
import {
  REQUEST_ID_PATTERN,
  requestIdStorage,
  resolveRequestId,
} from './request-id.js';

function capture(level: LogLevel): {
  logger: PinoLogger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line) lines.push(JSON.parse(line));
      }
      done();
    },
  });
  return { logger: new PinoLogger({ level, destination }), lines };
}

describe('PinoLogger', () => {
  it('writes JSON lines with pino level names and an ISO time', () => {
    const { logger, lines } = capture('verbose');
    logger.log('hello');
    logger.verbose('details');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'hello' });
    expect(lines[1]).toMatchObject({ level: 'trace', msg: 'details' });
    expect(String(lines[0].time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('writes only LOG_LEVEL and the levels before it', () => {
    const { logger, lines } = capture('warn');
    logger.verbose('v');
    logger.debug('d');
    logger.log('l');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    expect(lines.map((l) => l.level)).toEqual(['warn', 'error', 'fatal']);
  });

  it('follows setLogLevels: the most verbose level listed is the threshold', () => {
    const { logger, lines } = capture('log');
    logger.setLogLevels(['error', 'debug']);
    logger.debug('d');
    logger.setLogLevels([]);
    logger.fatal('f');
    expect(lines.map((l) => l.msg)).toEqual(['d']);
  });

  it("reads Nest's arguments: trailing context, stack before it, plain objects as fields", () => {
    const { logger, lines } = capture('log');
    const stack = 'Error: boom\n    at thing (/x/y.js:1:2)';
    logger.log(
      'request done',
      { status: 200, path: '/v1/images' },
      'AccessLog',
    );
    logger.error('failed', stack, 'Upload');
    logger.error('failed again', stack);
    logger.error('no stack', 'Download');
    logger.warn('two', 'parts', 'Ctx');
    expect(lines[0]).toMatchObject({
      msg: 'request done',
      context: 'AccessLog',
      status: 200,
      path: '/v1/images',
    });
    expect(lines[1]).toMatchObject({ msg: 'failed', context: 'Upload', stack });
    expect(lines[2]).toMatchObject({ msg: 'failed again', stack });
    expect(lines[2]).not.toHaveProperty('context');
    expect(lines[3]).toMatchObject({ msg: 'no stack', context: 'Download' });
    expect(lines[3]).not.toHaveProperty('stack');
    expect(lines[4]).toMatchObject({ msg: 'two parts', context: 'Ctx' });
  });

  it('serializes an Error message and merges an object message', () => {
    const { logger, lines } = capture('log');
    logger.error(new Error('kaput'), 'Errors');
    logger.log({ event: 'x', count: 2 });
    expect(lines[0]).toMatchObject({ msg: 'kaput', context: 'Errors' });
    expect(lines[0].err).toMatchObject({ type: 'Error', message: 'kaput' });
    expect(lines[1]).toMatchObject({ event: 'x', count: 2 });
  });

  it('adds request_id to lines written inside a request, and only there', async () => {
    const { logger, lines } = capture('log');
    const id = 'req-0123abcd-4567-89ab-cdef-0123456789ab';
    logger.log('before');
    await requestIdStorage.run(id, async () => {
      logger.log('sync');
      await new Promise((r) => setTimeout(r, 1));
      logger.log('after await');
    });
    logger.log('after');
    expect(lines.map((l) => [l.msg, l.request_id])).toEqual([
      ['before', undefined],
      ['sync', id],
      ['after await', id],
      ['after', undefined],
    ]);
  });
});

describe('resolveRequestId', () => {
  it('keeps a well-formed id and replaces anything else with a fresh one', () => {
    const good = 'req-0123abcd-4567-89ab-cdef-0123456789ab';
    expect(resolveRequestId(good)).toBe(good);
    for (const bad of [
      undefined,
      '',
      [good, good],
      good.toUpperCase(),
      `${good} `,
      'req-0123abcd45678',
    ]) {
      const id = resolveRequestId(bad);
      expect(id).toMatch(REQUEST_ID_PATTERN);
      expect(id).not.toBe(good);
    }
    expect(resolveRequestId(undefined)).not.toBe(resolveRequestId(undefined));
  });
});
