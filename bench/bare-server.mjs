// Baseline node:http servers, one mode per process (forked by run.mjs):
//   sink                      PUT/POST: discard the body (receive ceiling)
//   naive <dir>               PUT/POST: body to a file, md5 + sha512 on the main thread
//   stream <hwm>              GET: fs.createReadStream(file, { highWaterMark }) piped to the response
//   manual <buf> <n> [cork]   GET: fs.promises read into n reused buffers of <buf> bytes,
//                                  res.write with backpressure; "cork" batches writes
//   meta <file>               GET: the service's own list answer, HEAD: its own HEAD headers,
//                                  both captured in <file> (the metadata yardstick)
// Download modes serve the absolute path given URI-encoded as the request path.
// Answers the parent over IPC with { port } once listening.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFileSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const [mode, ...args] = process.argv.slice(2);
let uploadSeq = 0;

// meta mode: { list: { headers, body }, head: { headers } }, read once.
const captured = mode === 'meta' ? JSON.parse(readFileSync(args[0], 'utf8')) : undefined;

const handlers = {
  async meta(req, res) {
    if (req.method === 'HEAD') {
      res.writeHead(200, captured.head.headers);
      res.end();
      return;
    }
    res.writeHead(200, captured.list.headers);
    res.end(captured.list.body);
  },

  async sink(req, res) {
    let bytes = 0;
    await pipeline(
      req,
      new Writable({
        highWaterMark: 1024 * 1024,
        write(chunk, _enc, cb) {
          bytes += chunk.length;
          cb();
        },
      }),
    );
    sendJson(res, 201, { bytes });
  },

  async naive(req, res) {
    const file = join(args[0], `upload-${process.pid}-${uploadSeq++}`);
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    let bytes = 0;
    const hasher = new Transform({
      transform(chunk, _enc, cb) {
        md5.update(chunk);
        sha512.update(chunk);
        bytes += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(req, hasher, createWriteStream(file));
      sendJson(res, 201, {
        bytes,
        md5: md5.digest('hex'),
        sha512: sha512.digest('hex'),
      });
    } finally {
      await rm(file, { force: true });
    }
  },

  async stream(req, res) {
    const [hwm] = args;
    const file = requestedFile(req);
    const { size } = await stat(file);
    res.writeHead(200, octetHeaders(size));
    await pipeline(createReadStream(file, { highWaterMark: Number(hwm) }), res);
  },

  async manual(req, res) {
    const [bufSize, count, cork] = args;
    await sendManual(
      requestedFile(req),
      res,
      Number(bufSize),
      Number(count),
      cork === 'cork',
    );
  },
};

/**
 * Reads into a fixed pool of buffers; a buffer returns to the pool only when
 * res.write's callback says the socket took it, so reuse never corrupts data.
 */
async function sendManual(file, res, bufSize, count, cork) {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    res.writeHead(200, octetHeaders(size));
    const free = Array.from({ length: count }, () =>
      Buffer.allocUnsafe(bufSize),
    );
    let wakeFree;
    const release = (buf) => {
      free.push(buf);
      if (wakeFree) {
        const wake = wakeFree;
        wakeFree = undefined;
        wake();
      }
    };
    let closed = false;
    res.once('close', () => {
      closed = true;
      wakeFree?.();
    });
    let pos = 0;
    while (pos < size && !closed) {
      if (free.length === 0) {
        await new Promise((resolve) => (wakeFree = resolve));
        continue;
      }
      // With cork, fill every free buffer first and hand them over in one writev.
      const batch = [];
      do {
        const buf = free.pop();
        const { bytesRead } = await fh.read(
          buf,
          0,
          Math.min(bufSize, size - pos),
          pos,
        );
        if (bytesRead === 0) {
          free.push(buf);
          break;
        }
        pos += bytesRead;
        batch.push([buf, bytesRead]);
      } while (cork && free.length > 0 && pos < size);
      if (batch.length === 0) break;
      if (cork) res.cork();
      let ok = true;
      for (const [buf, n] of batch) {
        ok = res.write(n === buf.length ? buf : buf.subarray(0, n), () =>
          release(buf),
        );
      }
      if (cork) res.uncork();
      if (!ok && !closed) await drainOrClose(res);
    }
    if (!closed) res.end();
  } finally {
    await fh.close();
  }
}

function requestedFile(req) {
  return decodeURIComponent(req.url.slice(1));
}

function drainOrClose(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function octetHeaders(size) {
  return {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(size),
  };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

const handler = handlers[mode];
if (!handler) {
  console.error(`bare-server: unknown mode ${mode}`);
  process.exit(2);
}

const server = createServer((req, res) => {
  handler(req, res).catch((err) => {
    if (!res.headersSent)
      sendJson(res, 500, { error: String(err?.message ?? err) });
    else res.destroy();
  });
});
// Slow machines must not cut a 1 GiB upload short.
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () =>
  process.send({ port: server.address().port }),
);
process.on('disconnect', () => process.exit(0));
