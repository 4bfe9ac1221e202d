import type { LoggerService, LogLevel } from '@nestjs/common';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { currentRequestId } from './request-id.js';

/** Nest's level names to pino's: Nest `log` is pino `info`, `verbose` is `trace`. */
export const PINO_LEVELS: Record<LogLevel, Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/** From least to most verbose, as LOG_LEVEL reads: each level enables those before it. */
const NEST_LEVELS: LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'log',
  'debug',
  'verbose',
];

// Nest's own test for "this string argument is a stack trace, not a context".
const STACK = /^(.)+\n\s+at .+:\d+:\d+/;

export interface PinoLoggerOptions {
  /** The most verbose Nest level written (LOG_LEVEL). */
  level: LogLevel;
  /** Where the JSON lines go; stdout by default. */
  destination?: DestinationStream;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Nest LoggerService writing one JSON object per line through pino. Follows
 * Nest's calling convention: a trailing string is the context, error/fatal
 * may carry a stack before it, and plain objects after the message become
 * fields. Lines written while a request is served carry its request_id.
 */
export class PinoLogger implements LoggerService {
  readonly pino: Logger;

  constructor(options: PinoLoggerOptions) {
    this.pino = pino(
      {
        level: PINO_LEVELS[options.level],
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        mixin: () => {
          const id = currentRequestId();
          // pino merges into the returned object: it must be a fresh one.
          return id === undefined ? {} : { request_id: id };
        },
      },
      options.destination,
    );
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params, false);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params, true);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params, false);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params, false);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params, false);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params, true);
  }

  /** Nest passes the enabled levels; pino has a threshold: the most verbose one wins. */
  setLogLevels(levels: LogLevel[]): void {
    const mostVerbose = NEST_LEVELS.filter((l) => levels.includes(l)).at(-1);
    this.pino.level = mostVerbose ? PINO_LEVELS[mostVerbose] : 'silent';
  }

  private write(
    level: Level,
    message: unknown,
    params: unknown[],
    mayHaveStack: boolean,
  ): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    let rest = params;
    let last = rest.at(-1);
    if (mayHaveStack && typeof last === 'string' && STACK.test(last)) {
      fields.stack = last;
      rest = rest.slice(0, -1);
    } else if (typeof last === 'string') {
      fields.context = last;
      rest = rest.slice(0, -1);
      last = rest.at(-1);
      if (mayHaveStack && typeof last === 'string') {
        fields.stack = last;
        rest = rest.slice(0, -1);
      }
    }
    const texts: string[] = [];
    for (const param of rest) {
      if (isPlainObject(param)) Object.assign(fields, param);
      else if (param !== undefined) texts.push(String(param));
    }
    let msg: string | undefined;
    if (message instanceof Error) {
      fields.err = message;
      msg = message.message;
    } else if (isPlainObject(message)) {
      Object.assign(fields, message);
    } else {
      msg = String(message);
    }
    if (texts.length > 0)
      msg = [msg, ...texts].filter((t) => t !== undefined).join(' ');
    this.pino[level](fields, msg);
  }
}
