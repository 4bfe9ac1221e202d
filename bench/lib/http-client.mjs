import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { createServer } from 'node:net';

/** One request to 127.0.0.1; resolves with status, headers and the body as text. */
export function httpRequest({
  port,
  method = 'GET',
  path,
  headers = {},
  agent,
  timeoutMs = 30_000,
}) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers,
        agent,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${method} ${path} timed out`)),
    );
    req.on('error', reject);
    req.end();
  });
}

/** Streams a GET body through md5 without keeping it. */
export function downloadDigest(port, path) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      const hash = createHash('md5');
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode, bytes, md5: hash.digest('hex') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls until the port answers any HTTP request; fails early if `isAlive()` turns false. */
export async function waitUntilAnswers(port, isAlive, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('the service exited during startup');
    try {
      await httpRequest({ port, path: '/', timeoutMs: 1000 });
      return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `the service did not answer within ${timeoutMs} ms (${lastError?.message})`,
  );
}
