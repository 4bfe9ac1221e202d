import { describe, expect, it } from 'vitest';
import { explorerRequestInterceptor } from './explorer-request.interceptor.js';

const run = (url: string, headers: Record<string, string> = {}) =>
  explorerRequestInterceptor({ url, headers: { ...headers } });
/** UTF-8 bytes as the latin1 string a browser puts on the wire unchanged. */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

describe('explorerRequestInterceptor', () => {
  it('expands the properties header, given as key=value pairs, into x-image-meta-property-* headers', () => {
    const req = run('http://h/v1/images', {
      'x-image-meta-name': 'n',
      'x-image-meta-properties':
        'os_distro=debian; hw_disk_bus = virtio ;note=a=b',
    });
    expect(req.headers).toEqual({
      'x-image-meta-name': 'n',
      'x-image-meta-property-os_distro': 'debian',
      'x-image-meta-property-hw_disk_bus': 'virtio',
      'x-image-meta-property-note': 'a=b',
    });
  });

  it('accepts a JSON object and sends values as UTF-8 bytes', () => {
    const req = run('/v1/images/x', {
      'x-image-meta-properties':
        '{"os_distro": "debian", "label": "日本 é", "n": 3}',
      'x-image-meta-name': 'ünï',
    });
    expect(req.headers).toEqual({
      'x-image-meta-property-os_distro': 'debian',
      'x-image-meta-property-label': wire('日本 é'),
      'x-image-meta-property-n': '3',
      'x-image-meta-name': wire('ünï'),
    });
  });

  it('leaves input it cannot read alone, so that the service refuses it', () => {
    for (const bad of ['{not json', 'no-equals-sign', '["a"]', 'bad key=x']) {
      expect(
        run('/v1/images', { 'x-image-meta-properties': bad }).headers,
      ).toEqual({
        'x-image-meta-properties': bad,
      });
    }
  });

  it('turns the properties query into property-<key> filters and keeps the other parameters', () => {
    const req = run(
      'http://127.0.0.1:9292/v1/images/detail?limit=5&properties=os_distro%3Ddebian%3B%20arch%3Dx86_64',
    );
    const url = new URL(req.url);
    expect(url.origin).toBe('http://127.0.0.1:9292');
    expect([...url.searchParams]).toEqual([
      ['limit', '5'],
      ['property-os_distro', 'debian'],
      ['property-arch', 'x86_64'],
    ]);
    expect(run('/v1/images?properties=%7B%22a%22%3A%22b%20c%22%7D').url).toBe(
      '/v1/images?property-a=b+c',
    );
  });

  it('changes nothing else', () => {
    const headers = {
      'X-Tenant-Id': 't',
      'x-glance-registry-purge-props': 'false',
    };
    const req = run('http://h/v1/images?name=x', headers);
    expect(req).toEqual({ url: 'http://h/v1/images?name=x', headers });
  });

  it('needs nothing outside itself (Swagger UI runs its source text in the page)', () => {
    // oxlint-disable-next-line no-implied-eval -- the point: run the source text alone, as the page does
    const standalone = new Function(
      `return (${explorerRequestInterceptor.toString()})`,
    )() as typeof explorerRequestInterceptor;
    expect(
      standalone({
        url: '/v1/images?properties=a%3Db',
        headers: { 'x-image-meta-properties': 'k=v' },
      }),
    ).toEqual({
      url: '/v1/images?property-a=b',
      headers: { 'x-image-meta-property-k': 'v' },
    });
  });
});
