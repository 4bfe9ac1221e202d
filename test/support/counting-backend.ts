import http from 'node:http';
import type { AddressInfo } from 'node:net';

const KiB = 1024;

/**
 * An HTTP backend that counts GETs and sends slowly (so concurrent misses
 * overlap the fill); images point at it with x-image-meta-location and
 * carry their checksum, so the cache verifies what it stores.
 */
export async function countingBackend(data: Buffer, chunk = 64 * KiB, delayMs = 5) {
  const state = { gets: 0, rangeGets: 0 };
  const server = http.createServer((req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': data.length }).end();
      return;
    }
    const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range ? Number(range[2]) + 1 : data.length;
    if (range) state.rangeGets++;
    else state.gets++;
    res.writeHead(range ? 206 : 200, { 'content-length': end - start });
    let at = start;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(data.subarray(at, Math.min(end, at + chunk)));
      at += chunk;
      if (at >= end) {
        clearInterval(timer);
        res.end();
      }
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/image.raw`;
  return {
    state,
    url,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

