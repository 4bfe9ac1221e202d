// Bounded mixed load against a running service, then invariant checks
// (issue 12 §4). Plain ESM so `npm run soak` (node) and the e2e test (Vitest)
// share it. Every client records what the service's answers imply for each
// image it touched; checkInvariants() compares that with the service and the
// store folder once the clients are gone.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';

const MiB = 1024 * 1024;
/** USER_STORAGE_QUOTA of the soak's server: never reached by the load, probed by the quota invariant. */
export const SOAK_STORAGE_QUOTA = 64 * 1024 * MiB;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const md5 = (b) => createHash('md5').update(b).digest('hex');
const pick = (a) => a[Math.floor(Math.random() * a.length)];

export const ADMIN = { 'x-roles': 'admin', 'x-tenant-id': 'admin-tenant', 'x-user-id': 'admin' };
const tenant = (t) => ({ 'x-tenant-id': t, 'x-user-id': `${t}-user`, 'x-roles': 'member' });
const META = {
  'x-image-meta-disk_format': 'raw',
  'x-image-meta-container_format': 'bare',
};

/** One request; resolves { status, headers, body } or { error }. */
export function request(port, { method, path, headers = {}, body }) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...headers }, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (error) => resolve({ error }));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', (error) => resolve({ error }));
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else body(req);
  });
}

/** Sends the head and `sent` of a `length`-byte body, then hangs up. */
async function hangUp(port, method, path, headers, length, sent) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  const head = Object.entries({
    ...headers,
    host: '127.0.0.1',
    'content-type': 'application/octet-stream',
    'content-length': String(length),
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n`);
  socket.write(sent);
  if (Math.random() < 0.5) await sleep(Math.random() * 30);
  socket.destroy();
}

export class SoakState {
  constructor() {
    /** id → { owner, expect: 'active'|'killed'|'deleted'|'queued'|'active-or-deleted'..., md5?, size?, checksum? (when not md5: null = none) } */
    this.images = new Map();
    this.requests = 0;
    this.violations = [];
  }
  note(res, what) {
    this.requests++;
    if (res.status >= 500) this.violations.push(`${what}: HTTP ${res.status} ${res.body?.toString().slice(0, 200)}`);
  }
}

/** The scenarios; each returns after its requests ended. */
function scenarios(port, state, maxBytes) {
  const data = (min = 0) => randomBytes(Math.max(min, Math.floor(Math.random() ** 2 * maxBytes)));
  const upload = async (owner) => {
    const body = data();
    const id = randomUUID();
    const headers = { ...tenant(owner), ...META, 'x-image-meta-id': id, 'x-image-meta-name': 'soak', 'content-type': 'application/octet-stream' };
    if (Math.random() < 0.5) headers['x-image-meta-size'] = String(body.length);
    if (Math.random() < 0.5) headers['x-image-meta-checksum'] = md5(body);
    const res = await request(port, { method: 'POST', path: '/v1/images', headers, body });
    state.note(res, 'upload');
    if (res.status === 201) {
      if (body.length > 0) state.images.set(id, { owner, expect: 'active', md5: md5(body), size: body.length });
      // No body is Glance v1's reserve: active (with no data, checksum only if sent) when size 0 was given, else queued.
      else if (headers['x-image-meta-size'] !== undefined)
        state.images.set(id, { owner, expect: 'active', md5: md5(body), checksum: headers['x-image-meta-checksum'] ?? null, size: 0 });
      else state.images.set(id, { owner, expect: 'queued' });
    } else if (!res.error) state.violations.push(`upload ${id}: HTTP ${res.status}`);
    return id;
  };
  const reserve = async (owner) => {
    const res = await request(port, { method: 'POST', path: '/v1/images', headers: { ...tenant(owner), ...META, 'x-image-meta-name': 'reserved' } });
    state.note(res, 'reserve');
    if (res.status !== 201) return undefined;
    const id = JSON.parse(res.body).image.id;
    state.images.set(id, { owner, expect: 'queued' });
    return id;
  };
  const put = (owner, id, body) =>
    request(port, { method: 'PUT', path: `/v1/images/${id}`, headers: { ...tenant(owner), 'content-type': 'application/octet-stream' }, body });

  return {
    upload,
    async reserveThenPut(owner) {
      const id = await reserve(owner);
      if (!id) return;
      // An empty PUT is a metadata update, not an upload.
      const body = data(1);
      const res = await put(owner, id, body);
      state.note(res, 'put');
      if (res.status === 200) state.images.set(id, { owner, expect: 'active', md5: md5(body), size: body.length });
      else state.violations.push(`put ${id}: HTTP ${res.status}`);
    },
    async racingPuts(owner) {
      const id = await reserve(owner);
      if (!id) return;
      const bodies = [data(1), data(1)];
      const answers = await Promise.all(bodies.map((b) => put(owner, id, b)));
      answers.forEach((r) => state.note(r, 'racing put'));
      const won = answers.map((r, i) => (r.status === 200 ? i : -1)).filter((i) => i >= 0);
      if (won.length !== 1) state.violations.push(`racing puts on ${id}: ${won.length} winners (${answers.map((r) => r.status)})`);
      else state.images.set(id, { owner, expect: 'active', md5: md5(bodies[won[0]]), size: bodies[won[0]].length });
    },
    async cutUpload(owner) {
      const early = Math.random() < 0.5;
      if (Math.random() < 0.5) {
        const id = randomUUID();
        await hangUp(port, 'POST', '/v1/images', { ...tenant(owner), ...META, 'x-image-meta-id': id, 'x-image-meta-name': 'cut' }, 4 * MiB, randomBytes(early ? 4096 : 256 * 1024));
        state.requests++;
        // Gone before or after the image was created: killed, or never there.
        state.images.set(id, { owner, expect: 'killed-or-absent' });
      } else {
        const id = await reserve(owner);
        if (!id) return;
        await hangUp(port, 'PUT', `/v1/images/${id}`, tenant(owner), 4 * MiB, randomBytes(early ? 4096 : 256 * 1024));
        state.requests++;
        state.images.set(id, { owner, expect: 'killed-or-queued' });
      }
    },
    async deleteWhileUploading(owner) {
      const id = await reserve(owner);
      if (!id) return;
      const body = randomBytes(Math.max(64 * 1024, Math.floor(Math.random() * maxBytes)));
      const uploading = put(owner, id, (req) => {
        req.write(body.subarray(0, 32 * 1024));
        setTimeout(() => req.end(body.subarray(32 * 1024)), Math.random() * 40);
      });
      await sleep(Math.random() * 60);
      const del = await request(port, { method: 'DELETE', path: `/v1/images/${id}`, headers: tenant(owner) });
      const up = await uploading;
      state.note(del, 'delete'); state.note(up, 'upload being deleted');
      if (del.status !== 200) state.violations.push(`delete of uploading ${id}: HTTP ${del.status}`);
      // 404: the delete landed before the PUT looked the image up.
      if (![200, 404, 409, 412].includes(up.status) && !up.error) state.violations.push(`upload of deleted ${id}: HTTP ${up.status}`);
      state.images.set(id, { owner, expect: 'deleted' });
    },
    // The DELETE lands just as the last byte went out: it may read the image
    // saving and its upload activate before the delete commits (issue 12 §2).
    async deleteAsUploadEnds(owner) {
      const id = await reserve(owner);
      if (!id) return;
      const body = data(1);
      let allSent;
      const sentAll = new Promise((resolve) => { allSent = resolve; });
      const uploading = put(owner, id, (req) => {
        req.once('finish', allSent);
        req.end(body);
      });
      await sentAll;
      await sleep(Math.random() * 10);
      const del = await request(port, { method: 'DELETE', path: `/v1/images/${id}`, headers: tenant(owner) });
      const up = await uploading;
      state.note(del, 'delete at upload end'); state.note(up, 'upload deleted at its end');
      if (del.status !== 200) state.violations.push(`delete at the end of ${id}'s upload: HTTP ${del.status}`);
      if (![200, 404, 409, 412].includes(up.status) && !up.error) state.violations.push(`upload of ${id} deleted at its end: HTTP ${up.status}`);
      state.images.set(id, { owner, expect: 'deleted' });
    },
    async cutDownload(owner) {
      const id = await upload(owner);
      const entry = state.images.get(id);
      if (!entry || !(entry.size > 0)) return;
      await new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/v1/images/${id}`, headers: tenant(owner), agent: false }, (res) => {
          res.once('data', () => { req.destroy(); resolve(); });
          res.once('end', resolve);
        });
        req.on('error', resolve);
      });
      state.requests++;
    },
    async visibilityAndMembers(owner, others) {
      const id = await upload(owner);
      if (!state.images.has(id)) return;
      const other = pick(others);
      const probe = async (expected, what) => {
        const res = await request(port, { method: 'HEAD', path: `/v1/images/${id}`, headers: tenant(other) });
        state.note(res, what);
        if (res.status !== expected) state.violations.push(`${what}: ${other} got ${res.status} for ${owner}'s ${id}, expected ${expected}`);
      };
      await probe(404, 'cross-tenant probe');
      const add = await request(port, { method: 'PUT', path: `/v1/images/${id}/members/${other}`, headers: tenant(owner) });
      state.note(add, 'add member');
      if (add.status === 204) await probe(200, 'member probe');
      const rm = await request(port, { method: 'DELETE', path: `/v1/images/${id}/members/${other}`, headers: tenant(owner) });
      state.note(rm, 'remove member');
      if (rm.status === 204) await probe(404, 'removed member probe');
      const list = await request(port, { method: 'GET', path: '/v1/images/detail', headers: tenant(other) });
      state.note(list, 'list');
      if (list.status === 200) {
        for (const image of JSON.parse(list.body).images) {
          if (image.owner !== other && !image.is_public && image.id === id)
            state.violations.push(`list of ${other} shows ${owner}'s private ${id}`);
        }
      }
    },
    async deleteActive(owner) {
      const id = await upload(owner);
      if (!state.images.has(id)) return;
      const del = await request(port, { method: 'DELETE', path: `/v1/images/${id}`, headers: tenant(owner) });
      state.note(del, 'delete active');
      if (del.status === 200) state.images.set(id, { owner, expect: 'deleted' });
    },
  };
}

/**
 * Runs `clients` concurrent clients for `seconds` (tenants t0..t3 plus
 * admin probes). Returns the state to check.
 */
export async function runLoad({ port, seconds, clients = 12, maxBytes = 8 * MiB, log = () => {} }) {
  const state = new SoakState();
  const s = scenarios(port, state, maxBytes);
  const tenants = ['t0', 't1', 't2', 't3'];
  const names = Object.keys(s);
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, n) => {
      const owner = tenants[n % tenants.length];
      while (Date.now() < end) {
        const name = pick(names);
        await s[name](owner, tenants.filter((t) => t !== owner));
      }
    }),
  );
  log(`${state.requests} requests by ${clients} clients in ${seconds} s`);
  return state;
}

async function head(port, id) {
  const res = await request(port, { method: 'HEAD', path: `/v1/images/${id}`, headers: ADMIN });
  return res.status === 200 ? res.headers['x-image-meta-status'] : res.status === 404 ? 'absent' : `HTTP ${res.status}`;
}

/** Waits `graceMs` for uploads to settle, then returns every violated invariant. */
export async function checkInvariants({ port, storeDir, state, graceMs = 3000 }) {
  const violations = [...state.violations];
  const deadline = Date.now() + graceMs;
  // No image left saving once its client is gone (after a short grace).
  let saving = [];
  do {
    saving = [];
    for (const id of state.images.keys()) if ((await head(port, id)) === 'saving') saving.push(id);
    if (saving.length === 0) break;
    await sleep(200);
  } while (Date.now() < deadline);
  for (const id of saving) violations.push(`image ${id} still saving after the grace`);

  const active = new Map();
  for (const [id, entry] of state.images) {
    const status = await head(port, id);
    const ok = {
      active: ['active'],
      queued: ['queued'],
      deleted: ['deleted', 'pending_delete'],
      'killed-or-absent': ['killed', 'absent'],
      'killed-or-queued': ['killed', 'queued'],
    }[entry.expect];
    if (!ok.includes(status)) {
      violations.push(`image ${id}: ${status}, its client's answers imply ${entry.expect}`);
      continue;
    }
    if (status !== 'active') continue;
    active.set(id, entry);
    const res = await request(port, { method: 'GET', path: `/v1/images/${id}`, headers: tenant(entry.owner) });
    const checksum = entry.checksum === undefined ? entry.md5 : entry.checksum;
    if (res.status !== 200 || md5(res.body) !== entry.md5 || (res.headers['x-image-meta-checksum'] ?? null) !== checksum)
      violations.push(`image ${id}: bytes differ from what was sent (HTTP ${res.status}, ${res.body?.length} of ${entry.size} bytes)`);
  }

  // The store holds exactly one file per active image with data.
  const files = existsSync(storeDir) ? readdirSync(storeDir) : [];
  for (const f of files) {
    if (f.endsWith('.part')) violations.push(`partial file ${f} left in the store`);
    else if (!active.has(f)) {
      const status = await head(port, f);
      if (status !== 'active') violations.push(`store file ${f} (${statSync(join(storeDir, f)).size} bytes) of a ${status} image`);
    } else if (statSync(join(storeDir, f)).size !== active.get(f).size)
      violations.push(`store file ${f} is not the size of its image`);
  }
  for (const [id, entry] of active) {
    if (entry.size > 0 && !files.includes(id)) violations.push(`active image ${id} has no file`);
  }
  violations.push(...(await quotaViolations(port, state, files, storeDir)));
  return violations;
}

/**
 * The storage quota counts what is stored: for each tenant, the usage the
 * service enforces (read from the 413 of an upload one byte over the quota)
 * equals the bytes of its images' files in the store plus the declared sizes
 * of its queued images (Glance counts those too). Data left behind by a
 * deleted image shows here as stored bytes no quota counts.
 */
async function quotaViolations(port, state, files, storeDir) {
  const violations = [];
  const stored = new Map();
  const reserved = new Map();
  const add = (m, t, n) => m.set(t, (m.get(t) ?? 0) + n);
  for (const f of files) {
    if (f.endsWith('.part')) continue;
    const res = await request(port, { method: 'HEAD', path: `/v1/images/${f}`, headers: ADMIN });
    const owner = res.headers?.['x-image-meta-owner'];
    if (owner) add(stored, owner, statSync(join(storeDir, f)).size);
  }
  for (const [id, entry] of state.images) {
    const res = await request(port, { method: 'HEAD', path: `/v1/images/${id}`, headers: ADMIN });
    if (res.headers?.['x-image-meta-status'] === 'queued')
      add(reserved, entry.owner, Number(res.headers['x-image-meta-size'] ?? 0));
  }
  const owners = new Set([...state.images.values()].map((e) => e.owner));
  for (const owner of owners) {
    const res = await request(port, {
      method: 'POST',
      path: '/v1/images',
      headers: { ...tenant(owner), ...META, 'x-image-meta-name': 'quota-probe', 'x-image-meta-size': String(SOAK_STORAGE_QUOTA + 1), 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(1),
    });
    const remaining = /remaining storage is (\d+) bytes/.exec(res.body?.toString() ?? '')?.[1];
    if (res.status !== 413 || remaining === undefined) {
      violations.push(`quota probe of ${owner}: HTTP ${res.status} ${res.body?.toString().slice(0, 200)}`);
      continue;
    }
    const used = SOAK_STORAGE_QUOTA - Number(remaining);
    const expected = (stored.get(owner) ?? 0) + (reserved.get(owner) ?? 0);
    if (used !== expected)
      violations.push(`quota of ${owner} counts ${used} bytes; its store files hold ${stored.get(owner) ?? 0} and its queued images declare ${reserved.get(owner) ?? 0}`);
  }
  return violations;
}
