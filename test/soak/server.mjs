// Starts the service as a real child process for the soak load.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { request, SOAK_STORAGE_QUOTA } from './soak-load.mjs';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `node <mainJs>` with the given env; resolves once /healthcheck answers. */
export async function startServer({ mainJs, cwd, env }) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--max-semi-space-size=4', '--max-old-space-size=512', mainJs], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      NO_COLOR: '1',
      PORT: String(port),
      HOST: '127.0.0.1',
      AUTH_STRATEGY: 'noauth',
      LOG_FORMAT: 'text',
      ACCESS_LOG: 'false',
      NOTIFICATION_DRIVER: 'noop',
      USER_STORAGE_QUOTA: String(SOAK_STORAGE_QUOTA),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (c) => {
    out = (out + c.toString()).slice(-50_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`service exited while starting:\n${out}`);
    const res = await request(port, { method: 'GET', path: '/healthcheck' });
    if (res.status === 200) break;
    if (Date.now() > deadline) throw new Error(`service did not become healthy:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}
