import { describe, expect, it } from 'vitest';
import { redactLocations } from './redact-locations.js';

describe('redactLocations', () => {
  it('removes location keys at every depth without touching the input', () => {
    const input = {
      images: [
        {
          id: 'a',
          location: 'swift://u:p@x/a',
          location_data: [{ url: 'x' }],
          properties: { k: 'v' },
        },
        { id: 'b', nested: { locations: ['s3://k:s@b/k'], keep: 1 } },
      ],
      location: 'file:///secret',
    };
    const snapshot = structuredClone(input);
    const out = redactLocations(input);
    expect(out).toEqual({
      images: [
        { id: 'a', properties: { k: 'v' } },
        { id: 'b', nested: { keep: 1 } },
      ],
    });
    expect(JSON.stringify(out)).not.toMatch(/location|swift:|s3:|file:/);
    expect(input).toEqual(snapshot);
  });

  it("keeps a user's property named location", () => {
    const image = {
      id: 'a',
      location: 'swift://k@x/a',
      properties: { location: 'rack 4', locations: 'x' },
    };
    expect(redactLocations({ image })).toEqual({
      image: { id: 'a', properties: { location: 'rack 4', locations: 'x' } },
    });
  });

  it('returns clean values as they are', () => {
    const clean = { images: [{ id: 'a', properties: { x: null } }], n: 1 };
    expect(redactLocations(clean)).toBe(clean);
    expect(redactLocations('location')).toBe('location');
    expect(redactLocations(null)).toBe(null);
  });

  it('keeps the order and the untouched siblings of a redacted element', () => {
    const kept = { id: 'k' };
    const out = redactLocations([
      kept,
      { id: 'r', location: 'x' },
      { id: 'z' },
    ]);
    expect(out).toEqual([{ id: 'k' }, { id: 'r' }, { id: 'z' }]);
    expect(out[0]).toBe(kept);
  });
});
