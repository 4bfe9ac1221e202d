import { spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request, { type Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryParser, expectError } from '../support/image-assertions.js';
import { ImageRegistry } from '../../src/registry/image.registry.js';
import { metaHeaders } from '../support/image-builder.js';
import { freePort } from '../support/free-port.js';
import { transpileServer } from '../support/transpile-server.js';
import { as, createTestApp, type TestApp } from '../support/test-app.js';

type Auth = Record<string, string>;

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'test/fixtures');
const ROLES_CONF = join(FIXTURES, 'property-protections-roles.conf');
const POLICIES_CONF = join(FIXTURES, 'property-protections-policies.conf');
const POLICY_JSON = join(FIXTURES, 'policy.json');

/** Every caller is in the owning tenant: only the property rules tell them apart. */
const CALLERS = {
  admin: as('tenant-a', 'admin'),
  member: as('tenant-a', 'member'),
  spl_role: as('tenant-a', 'spl_role'),
  fake_role: as('tenant-a', 'fake_role'),
} as const;
type Role = keyof typeof CALLERS;

const DATA = Buffer.from('protected image bytes');

/** x-image-meta-property-* of a response, as a plain object. */
function headerProps(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (k.startsWith('x-image-meta-property-'))
      out[k.slice('x-image-meta-property-'.length)] = String(v);
  }
  return out;
}

function propertyApi(app: () => TestApp) {
  const create = (
    auth: Auth,
    properties: Record<string, string>,
    data?: Buffer,
  ) => {
    const req = request(app().http)
      .post('/v1/images')
      .set(auth)
      .set(metaHeaders({ name: 'pp', properties }));
    return data
      ? req.set('Content-Type', 'application/octet-stream').send(data)
      : req;
  };
  /** An image holding `properties`, created by the admin (who may create all but x_none_permitted). */
  const seeded = async (
    properties: Record<string, string>,
    data?: Buffer,
  ): Promise<string> => {
    const res = await create(CALLERS.admin, properties, data);
    expect(res.status, res.text).toBe(201);
    return res.body.image.id;
  };
  const update = (
    auth: Auth,
    id: string,
    properties: Record<string, string>,
    purge = true,
  ) => {
    const req = request(app().http)
      .put(`/v1/images/${id}`)
      .set(auth)
      .set('x-glance-registry-purge-props', String(purge));
    for (const [k, v] of Object.entries(properties))
      req.set(`x-image-meta-property-${k}`, v);
    return req;
  };
  /** The stored properties, whatever the rules say about reading them (straight from the database). */
  const stored = async (id: string): Promise<Record<string, string>> => {
    const image = await app().app.get(ImageRegistry).get(id);
    return { ...image!.properties } as Record<string, string>;
  };
  return { create, seeded, update, stored };
}

describe('PROPERTY_PROTECTION_RULE_FORMAT=roles (Glance test fixture)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      PROPERTY_PROTECTION_FILE: ROLES_CONF,
      PROPERTY_PROTECTION_RULE_FORMAT: 'roles',
    });
  });
  afterAll(async () => t?.close());
  const api = propertyApi(() => t);

  describe('create', () => {
    const cases: [string, Role[], Role[]][] = [
      ['spl_create_prop', ['admin', 'spl_role'], ['member', 'fake_role']],
      ['spl_read_only_prop', ['admin'], ['spl_role', 'member']],
      ['spl_update_only_prop', ['admin'], ['spl_role']],
      ['x_owner_foo', ['admin', 'member'], ['spl_role', 'fake_role']],
      ['x_all_permitted_1', ['admin', 'member', 'spl_role', 'fake_role'], []],
      ['x_none_permitted_1', [], ['admin', 'member', 'spl_role', 'fake_role']],
      ['x_foo_matcher', ['admin'], ['member', 'fake_role']],
      ['x_foo_bar', ['admin', 'member', 'fake_role'], []],
      ['unmatched_prop', ['admin'], ['member', 'spl_role']],
    ];
    it.each(cases)(
      '%s: allowed to %j, refused to %j',
      async (prop, allowed, refused) => {
        for (const role of allowed) {
          const res = await api.create(CALLERS[role], { [prop]: 'v' });
          expect(res.status, `${role}: ${res.text}`).toBe(201);
        }
        for (const role of refused) {
          expectError(
            await api.create(CALLERS[role], { [prop]: 'v' }),
            403,
            `Property '${prop}' is protected`,
          );
        }
      },
    );

    it('one protected property refuses the whole request', async () => {
      const res = await api.create(CALLERS.member, {
        x_owner_ok: '1',
        spl_create_prop: '2',
      });
      expect(res.status).toBe(403);
      const list = await request(t.http)
        .get('/v1/images/detail?property-x_owner_ok=1')
        .set(CALLERS.admin);
      expect(list.body.images).toEqual([]);
    });

    it('an update adding a property needs create permission', async () => {
      const id = await api.seeded({ x_owner_a: '1' });
      expectError(
        await api.update(CALLERS.member, id, {
          x_owner_a: '1',
          spl_create_prop: 'x',
        }),
        403,
        'spl_create_prop',
      );
      expect(
        (
          await api.update(
            CALLERS.spl_role,
            id,
            { spl_create_prop: 'x' },
            false,
          )
        ).status,
      ).toBe(200);
      expect(await api.stored(id)).toEqual({
        x_owner_a: '1',
        spl_create_prop: 'x',
      });
    });
  });

  describe('read', () => {
    const props = {
      spl_read_prop: 'r',
      spl_update_only_prop: 'u',
      x_owner_foo: 'o',
      x_none_read: 'n',
      x_all_permitted_x: 'a',
    };
    const visible: Record<Role, string[]> = {
      admin: [
        'spl_read_prop',
        'spl_update_only_prop',
        'x_all_permitted_x',
        'x_owner_foo',
      ],
      member: ['x_all_permitted_x', 'x_owner_foo'],
      spl_role: ['spl_read_prop', 'x_all_permitted_x'],
      fake_role: ['x_all_permitted_x'],
    };
    let id: string;
    beforeAll(async () => {
      id = await api.seeded(props, DATA);
    });

    it.each(Object.keys(CALLERS) as Role[])(
      '%s sees only readable properties in HEAD, GET and detail',
      async (role) => {
        const auth = CALLERS[role];
        const head = await request(t.http).head(`/v1/images/${id}`).set(auth);
        expect(Object.keys(headerProps(head)).sort()).toEqual(visible[role]);
        const get = await request(t.http)
          .get(`/v1/images/${id}`)
          .set(auth)
          .buffer(true)
          .parse(binaryParser);
        expect(get.status).toBe(200);
        expect(Object.keys(headerProps(get)).sort()).toEqual(visible[role]);
        const detail = await request(t.http)
          .get('/v1/images/detail?property-x_all_permitted_x=a')
          .set(auth);
        const listed = detail.body.images.find(
          (i: { id: string }) => i.id === id,
        );
        expect(Object.keys(listed.properties).sort()).toEqual(visible[role]);
        const filtered = await request(t.http)
          .get('/v1/images/detail?property-x_none_read=n')
          .set(auth);
        for (const image of filtered.body.images)
          expect(image.properties.x_none_read).toBeUndefined();
      },
    );

    it('an update response shows only readable properties too', async () => {
      for (const role of ['fake_role', 'admin'] as const) {
        const res = await api.update(CALLERS[role], id, {}, false);
        expect(res.status).toBe(200);
        expect(Object.keys(res.body.image.properties).sort()).toEqual(
          visible[role],
        );
      }
      expect(await api.stored(id)).toEqual(props);
    });
  });

  describe('update', () => {
    const cases: [string, Role, 'changed' | 'unchanged', number][] = [
      ['spl_update_prop', 'spl_role', 'changed', 200],
      ['spl_update_prop', 'member', 'changed', 403],
      ['spl_read_only_prop', 'spl_role', 'changed', 403],
      ['spl_read_only_prop', 'spl_role', 'unchanged', 200],
      ['spl_update_only_prop', 'spl_role', 'changed', 403],
      ['spl_update_only_prop', 'spl_role', 'unchanged', 403],
      ['x_none_update', 'admin', 'changed', 403],
      ['x_none_update', 'admin', 'unchanged', 200],
      ['x_owner_foo', 'member', 'changed', 200],
      ['x_all_permitted_u', 'fake_role', 'changed', 200],
    ];
    it.each(cases)(
      '%s by %s (%s value) → %i',
      async (prop, role, how, status) => {
        const id = await api.seeded({ [prop]: 'before' });
        const value = how === 'changed' ? 'after' : 'before';
        const res = await api.update(
          CALLERS[role],
          id,
          { [prop]: value },
          false,
        );
        expect(res.status, res.text).toBe(status);
        if (status === 403)
          expect(res.text).toContain(`Property '${prop}' is protected`);
        expect(await api.stored(id)).toEqual({
          [prop]: status === 200 ? value : 'before',
        });
      },
    );
  });

  describe('delete (by purging)', () => {
    const cases: [string, Role, 'deleted' | 'refused' | 'kept'][] = [
      ['spl_delete_prop', 'spl_role', 'deleted'],
      ['spl_delete_prop', 'member', 'kept'],
      ['spl_read_prop', 'spl_role', 'refused'],
      ['spl_update_only_prop', 'spl_role', 'kept'],
      ['x_none_read', 'admin', 'kept'],
      ['x_none_delete', 'admin', 'refused'],
      ['x_owner_foo', 'member', 'deleted'],
      ['x_owner_foo', 'fake_role', 'kept'],
    ];
    it.each(cases)('%s omitted by %s → %s', async (prop, role, outcome) => {
      const id = await api.seeded({ [prop]: 'v' });
      const res = await api.update(CALLERS[role], id, {
        x_all_permitted_new: 'n',
      });
      if (outcome === 'refused') {
        expectError(res, 403, `Property '${prop}' is protected`);
        expect(await api.stored(id)).toEqual({ [prop]: 'v' });
        return;
      }
      expect(res.status, res.text).toBe(200);
      const after = await api.stored(id);
      expect(after).toEqual(
        outcome === 'deleted'
          ? { x_all_permitted_new: 'n' }
          : { [prop]: 'v', x_all_permitted_new: 'n' },
      );
      // What the caller cannot read stays invisible to it after the update.
      if (outcome === 'kept')
        expect(res.body.image.properties[prop]).toBeUndefined();
    });

    it('without purge, leaving a property out deletes nothing', async () => {
      const id = await api.seeded({ spl_read_prop: 'v' });
      expect((await api.update(CALLERS.spl_role, id, {}, false)).status).toBe(
        200,
      );
      expect(await api.stored(id)).toEqual({ spl_read_prop: 'v' });
    });
  });
});

describe('PROPERTY_PROTECTION_RULE_FORMAT=policies (Glance test fixtures)', () => {
  let t: TestApp;
  let dir: string;
  let policyFile: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-pp-'));
    policyFile = join(dir, 'policy.json');
    copyFileSync(POLICY_JSON, policyFile);
    t = await createTestApp({
      PROPERTY_PROTECTION_FILE: POLICIES_CONF,
      PROPERTY_PROTECTION_RULE_FORMAT: 'policies',
      POLICY_FILE: policyFile,
    });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const api = propertyApi(() => t);

  it.each([
    ['spl_creator_policy', ['admin', 'spl_role'], ['member', 'fake_role']],
    ['spl_default_policy', ['admin'], ['spl_role', 'member']],
    ['x_all_permitted_p', ['fake_role'], []],
    ['x_none_permitted_p', [], ['admin']],
    ['x_none_read', ['admin'], ['member']],
    ['x_foo_matcher', ['admin'], ['member']],
    ['x_foo_baz', ['fake_role'], []],
    ['other_prop', ['admin'], ['spl_role', 'member']],
  ] as [string, Role[], Role[]][])(
    'create %s: allowed to %j, refused to %j',
    async (prop, allowed, refused) => {
      for (const role of allowed)
        expect((await api.create(CALLERS[role], { [prop]: 'v' })).status).toBe(
          201,
        );
      for (const role of refused) {
        expectError(
          await api.create(CALLERS[role], { [prop]: 'v' }),
          403,
          `Property '${prop}' is protected`,
        );
      }
    },
  );

  it('read, update and delete follow the named policies', async () => {
    const id = await api.seeded({
      spl_creator_policy: 'c',
      spl_default_policy: 'd',
      x_none_read: 'n',
    });
    const readable = async (role: Role) =>
      Object.keys(
        headerProps(
          await request(t.http).head(`/v1/images/${id}`).set(CALLERS[role]),
        ),
      ).sort();
    expect(await readable('admin')).toEqual([
      'spl_creator_policy',
      'spl_default_policy',
    ]);
    expect(await readable('spl_role')).toEqual([
      'spl_creator_policy',
      'spl_default_policy',
    ]);
    expect(await readable('member')).toEqual(['spl_default_policy']);

    // spl_role may read but not update (context_is_admin) spl_creator_policy.
    expect(
      (
        await api.update(
          CALLERS.spl_role,
          id,
          { spl_creator_policy: 'x' },
          false,
        )
      ).status,
    ).toBe(403);
    expect(
      (await api.update(CALLERS.admin, id, { spl_creator_policy: 'x' }, false))
        .status,
    ).toBe(200);
    // member cannot read spl_creator_policy (kept), may read but not delete spl_default_policy.
    expectError(
      await api.update(CALLERS.member, id, {}),
      403,
      "Property 'spl_default_policy' is protected",
    );
    const kept = await api.update(CALLERS.member, id, {
      spl_default_policy: 'd',
    });
    expect(kept.status).toBe(200);
    expect(await api.stored(id)).toEqual({
      spl_creator_policy: 'x',
      spl_default_policy: 'd',
      x_none_read: 'n',
    });
  });

  it('a changed POLICY_FILE changes what the policies allow, without a restart', async () => {
    expect(
      (await api.create(CALLERS.spl_role, { spl_creator_policy: 'v' })).status,
    ).toBe(201);
    const policy = JSON.parse(readFileSync(POLICY_JSON, 'utf8'));
    writeFileSync(
      policyFile,
      JSON.stringify({ ...policy, glance_creator: 'role:admin' }),
    );
    await new Promise((r) => setTimeout(r, 1100));
    expectError(
      await api.create(CALLERS.spl_role, { spl_creator_policy: 'v' }),
      403,
      'spl_creator_policy',
    );
    expect(
      (await api.create(CALLERS.admin, { spl_creator_policy: 'v' })).status,
    ).toBe(201);
  });
});

describe('an invalid property protection file stops the built server', () => {
  let build: string;
  beforeAll(() => {
    // A private build (file by file) so that dist/ of concurrent runs is left alone.
    build = mkdtempSync(join(tmpdir(), 'glance-build-'));
    transpileServer(build);
  }, 60_000);
  afterAll(() => {
    if (build) rmSync(build, { recursive: true, force: true });
  });

  function run(
    env: Record<string, string>,
  ): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [join(build, 'src/main.js')], {
      cwd: build,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      }),
    );
  }

  it.each([
    ['roles', '[^x_mixed]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n'],
    [
      'policies',
      '[^x_mixed]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n',
    ],
  ])(
    'format %s: a rule with both @ and ! → non-zero exit, the file named',
    async (format, text) => {
      const file = join(build, `bad-${format}.conf`);
      writeFileSync(file, text);
      const { code, output } = await run({
        PROPERTY_PROTECTION_FILE: file,
        PROPERTY_PROTECTION_RULE_FORMAT: format,
        DATABASE_URL: `sqlite:${join(build, `${format}.sqlite`)}`,
        FILESYSTEM_STORE_DATADIR: join(build, 'images'),
        HOST: '127.0.0.1',
        PORT: String(await freePort()),
        NOTIFICATION_DRIVER: 'noop',
      });
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const lines = output.split('\n').filter((l) => l.includes(file));
      expect(lines.length, output).toBeGreaterThan(0);
      expect(lines.join('\n')).toMatch(/invalid/i);
      expect(output).not.toContain('listening');
    },
  );
});
