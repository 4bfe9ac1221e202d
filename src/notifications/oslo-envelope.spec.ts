import { describe, expect, it } from 'vitest';
import { buildOsloEnvelope, formatOsloTimestamp } from './oslo-envelope.js';
import type { OsloNotification } from './oslo-envelope.js';

const UUID4 =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('buildOsloEnvelope', () => {
  it('wraps the notification as a JSON string in a 2.0 envelope', () => {
    const envelope = buildOsloEnvelope({
      publisherId: 'image.host1',
      eventType: 'image.update',
      payload: { id: 'abc', size: 12, name: 'ünïcode' },
      priority: 'info',
      now: new Date(Date.UTC(2014, 0, 2, 3, 4, 5, 67)),
    });

    expect(Object.keys(envelope).sort()).toEqual([
      'oslo.message',
      'oslo.version',
    ]);
    expect(envelope['oslo.version']).toBe('2.0');
    expect(typeof envelope['oslo.message']).toBe('string');

    const message = JSON.parse(envelope['oslo.message']) as OsloNotification;
    expect(message).toEqual({
      message_id: expect.stringMatching(UUID4),
      publisher_id: 'image.host1',
      event_type: 'image.update',
      priority: 'INFO',
      payload: { id: 'abc', size: 12, name: 'ünïcode' },
      timestamp: '2014-01-02 03:04:05.067000',
      _unique_id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });

  it('upper-cases every priority as oslo does', () => {
    const priorities = (['info', 'warn', 'error'] as const).map(
      (priority) =>
        (
          JSON.parse(
            buildOsloEnvelope({
              publisherId: 'p',
              eventType: 'e',
              payload: {},
              priority,
            })['oslo.message'],
          ) as OsloNotification
        ).priority,
    );
    expect(priorities).toEqual(['INFO', 'WARN', 'ERROR']);
  });

  it('gives each message fresh ids and the current UTC time', () => {
    const build = () =>
      JSON.parse(
        buildOsloEnvelope({
          publisherId: 'p',
          eventType: 'e',
          payload: null,
          priority: 'info',
        })['oslo.message'],
      ) as OsloNotification;
    const before = Date.now();
    const a = build();
    const b = build();
    expect(a.message_id).not.toBe(b.message_id);
    expect(a._unique_id).not.toBe(b._unique_id);
    expect(a.timestamp).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
    const parsed = Date.parse(`${a.timestamp.replace(' ', 'T').slice(0, 23)}Z`);
    expect(parsed).toBeGreaterThanOrEqual(before);
    expect(parsed).toBeLessThanOrEqual(Date.now());
  });

  it('sends an undefined payload as null', () => {
    const message = JSON.parse(
      buildOsloEnvelope({
        publisherId: 'p',
        eventType: 'e',
        payload: undefined,
        priority: 'info',
      })['oslo.message'],
    ) as Record<string, unknown>;
    expect(message).toHaveProperty('payload', null);
  });

  it('throws on a payload JSON cannot represent', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() =>
      buildOsloEnvelope({
        publisherId: 'p',
        eventType: 'e',
        payload: cyclic,
        priority: 'info',
      }),
    ).toThrow(TypeError);
  });
});

describe('formatOsloTimestamp', () => {
  it('keeps six fractional digits even on a whole second', () => {
    expect(
      formatOsloTimestamp(new Date(Date.UTC(2024, 11, 31, 23, 59, 59))),
    ).toBe('2024-12-31 23:59:59.000000');
  });
});
