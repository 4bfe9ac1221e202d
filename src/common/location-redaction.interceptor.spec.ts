import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { lastValueFrom, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { LocationRedactionInterceptor } from './location-redaction.interceptor.js';
import { imageListBody } from './redact-locations.js';

function run(body: unknown): Promise<unknown> {
  const res = { headersSent: false, removeHeader: () => undefined };
  const context = {
    switchToHttp: () => ({ getResponse: () => res }),
  } as unknown as ExecutionContext;
  const next: CallHandler = { handle: () => of(body) };
  return lastValueFrom(new LocationRedactionInterceptor().intercept(context, next));
}

describe('LocationRedactionInterceptor', () => {
  it('passes a flat image list built by imageListBody through as it is', async () => {
    const body = imageListBody([{ id: 'a', size: 1, properties: { location: 'rack 4' } }]);
    expect(await run(body)).toBe(body);
  });

  it('still strips a location that got into an imageListBody entry', async () => {
    const body = imageListBody([
      { id: 'a', properties: {} },
      { id: 'b', location: 'swift://u:p@x/b', properties: {} },
    ]);
    const out = await run(body);
    expect(out).toEqual({ images: [{ id: 'a', properties: {} }, { id: 'b', properties: {} }] });
    expect(JSON.stringify(out)).not.toContain('swift:');
  });

  it('walks an imageListBody entry that is not flat', async () => {
    const body = imageListBody([
      { id: 'a', nested: { location_data: [{ url: 'file:///x' }] }, properties: {} },
    ]);
    expect(await run(body)).toEqual({ images: [{ id: 'a', nested: {}, properties: {} }] });
  });

  it('walks an imageListBody given extra top-level keys', async () => {
    const body = Object.assign(imageListBody([{ id: 'a' }]), { location: 'file:///x' });
    expect(await run(body)).toEqual({ images: [{ id: 'a' }] });
  });

  it('redacts a look-alike body that did not come from imageListBody', async () => {
    const body = { images: [{ id: 'a', location: 'file:///secret' }] };
    expect(await run(body)).toEqual({ images: [{ id: 'a' }] });
  });
});
