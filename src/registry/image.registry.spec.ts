import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RequestContext } from '../common/request-context.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { ImageEntity } from './entities/image.entity.js';
import { ImageMemberEntity } from './entities/image-member.entity.js';
import { ImagePropertyEntity } from './entities/image-property.entity.js';
import type {
  ImageListFilters,
  ImageListQuery,
  SortKey,
} from './image-list-query.js';
import type { ImageRecord } from './image-record.js';
import { ImageRegistry, type NewImage } from './image.registry.js';
import { MemberRegistry } from './member.registry.js';
import { RegistryError, RegistryErrorCode } from './registry.error.js';

const ADMIN = new RequestContext(null, null, ['admin'], true);
const tenant = (t: string) =>
  new RequestContext(t, `${t}-user`, ['member'], false);

function query(overrides: Partial<ImageListQuery> = {}): ImageListQuery {
  return {
    filters: {},
    limit: 1000,
    sortKey: 'created_at',
    sortDir: 'desc',
    adminAsUser: false,
    ...overrides,
  };
}

function image(overrides: Partial<NewImage> = {}): NewImage {
  return {
    name: 'img',
    disk_format: 'raw',
    container_format: 'bare',
    size: 10,
    status: 'active',
    owner: 'tenant-a',
    properties: {},
    ...overrides,
  };
}

async function registryError(
  promise: Promise<unknown>,
): Promise<RegistryError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

describe('ImageRegistry', () => {
  let dir: string;
  let db: DataSource;
  let registry: ImageRegistry;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-registry-'));
    db = new DataSource(
      buildDataSourceOptions(`sqlite:${join(dir, 'registry.sqlite')}`),
    );
    await db.initialize();
    await db.runMigrations({ transaction: 'each' });
    registry = new ImageRegistry(db);
  });
  afterAll(async () => {
    await db?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await db.query('DELETE FROM image_members');
    await db.query('DELETE FROM image_locations');
    await db.query('DELETE FROM image_properties');
    await db.query('DELETE FROM images');
  });

  const ids = (images: ImageRecord[]) => images.map((i) => i.id);
  const list = (ctx: RequestContext, q: Partial<ImageListQuery> = {}) =>
    registry.list(ctx, query(q));
  const filtered = async (filters: ImageListFilters) =>
    ids(await list(ADMIN, { filters })).sort();

  describe('create and get', () => {
    it('assigns a UUID, defaults and timestamps, and stores properties', async () => {
      const created = await registry.create({
        status: 'queued',
        properties: { distro: 'Ubuntu', arch: null },
      });
      expect(created.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
      expect(created).toMatchObject({
        name: null,
        status: 'queued',
        is_public: false,
        protected: false,
        min_disk: 0,
        min_ram: 0,
        deleted: false,
        deleted_at: null,
        properties: { distro: 'Ubuntu', arch: null },
        location: null,
        location_data: [],
      });
      expect(created.created_at).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/,
      );
      expect(created.updated_at).toBe(created.created_at);
      expect(await registry.get(created.id)).toEqual(created);
    });

    it('keeps a client-chosen id and refuses a duplicate', async () => {
      const id = '6bbe7cc2-eae7-4c0f-b50d-a7160b0c6a86';
      await registry.create(image({ id }));
      const err = await registryError(
        registry.create(image({ id, name: 'again' })),
      );
      expect(err.code).toBe(RegistryErrorCode.Duplicate);
      expect(err.message).toContain(id);
      expect((await registry.get(id))?.name).toBe('img');
    });

    it('stores a location and returns it only through get', async () => {
      const created = await registry.create(
        image({ location: { url: 'file:///tmp/x', metadata: { a: 1 } } }),
      );
      expect(created.location).toBe('file:///tmp/x');
      expect(created.location_data).toEqual([
        { url: 'file:///tmp/x', metadata: { a: 1 } },
      ]);
      const [listed] = await list(ADMIN);
      expect(listed).not.toHaveProperty('location');
      expect(listed).not.toHaveProperty('location_data');
    });

    it('returns null for an unknown id, and deleted images only when asked', async () => {
      expect(
        await registry.get('00000000-0000-0000-0000-000000000000'),
      ).toBeNull();
      const created = await registry.create(image());
      await registry.destroy(created.id);
      expect(await registry.get(created.id)).toBeNull();
      expect((await registry.get(created.id, true))?.status).toBe('deleted');
    });
  });

  describe('visibility', () => {
    let pub: ImageRecord,
      privA: ImageRecord,
      privB: ImageRecord,
      shared: ImageRecord,
      unowned: ImageRecord;
    beforeEach(async () => {
      pub = await registry.create(
        image({ name: 'pub', owner: 'tenant-b', is_public: true }),
      );
      privA = await registry.create(
        image({ name: 'privA', owner: 'tenant-a' }),
      );
      privB = await registry.create(
        image({ name: 'privB', owner: 'tenant-b' }),
      );
      shared = await registry.create(
        image({ name: 'shared', owner: 'tenant-b' }),
      );
      unowned = await registry.create(image({ name: 'unowned', owner: null }));
      await db.getRepository(ImageMemberEntity).insert({
        imageId: shared.id,
        member: 'tenant-a',
        canShare: false,
        status: 'pending',
        createdAt: shared.created_at,
        deleted: false,
      });
    });

    it('isVisible: admin, public, own, shared and unowned images', async () => {
      const a = tenant('tenant-a');
      expect(await registry.isVisible(a, pub)).toBe(true);
      expect(await registry.isVisible(a, privA)).toBe(true);
      expect(await registry.isVisible(a, shared)).toBe(true);
      expect(await registry.isVisible(a, unowned)).toBe(true);
      expect(await registry.isVisible(a, privB)).toBe(false);
      expect(await registry.isVisible(tenant('tenant-c'), shared)).toBe(false);
      expect(await registry.isVisible(ADMIN, privB)).toBe(true);
      const anonymous = new RequestContext(null, null, ['member'], false);
      expect(await registry.isVisible(anonymous, privA)).toBe(false);
      expect(await registry.isVisible(anonymous, pub)).toBe(true);
    });

    it("a tenant lists public, own and shared images, not other tenants' private ones", async () => {
      const seen = ids(await list(tenant('tenant-a'))).sort();
      expect(seen).toEqual([pub.id, privA.id, shared.id].sort());
      expect(ids(await list(tenant('tenant-c')))).toEqual([pub.id]);
    });

    it('a deleted membership no longer shares the image', async () => {
      await db
        .getRepository(ImageMemberEntity)
        .update({ imageId: shared.id }, { deleted: true });
      expect(ids(await list(tenant('tenant-a')))).not.toContain(shared.id);
      expect(await registry.isVisible(tenant('tenant-a'), shared)).toBe(false);
    });

    it('an admin lists everything, or only what a user would see with adminAsUser', async () => {
      expect(ids(await list(ADMIN)).sort()).toEqual(
        [pub.id, privA.id, privB.id, shared.id, unowned.id].sort(),
      );
      const asUser = new RequestContext('tenant-b', 'u', ['admin'], true);
      expect(ids(await list(asUser, { adminAsUser: true })).sort()).toEqual(
        [pub.id, privB.id, shared.id].sort(),
      );
    });

    it('an unknown or invisible marker is an InvalidMarker error', async () => {
      const unknown = await registryError(
        list(tenant('tenant-a'), {
          marker: '11111111-1111-1111-1111-111111111111',
        }),
      );
      expect(unknown.code).toBe(RegistryErrorCode.InvalidMarker);
      expect(unknown.message).toBe('Invalid marker. Image could not be found.');
      const invisible = await registryError(
        list(tenant('tenant-a'), { marker: privB.id }),
      );
      expect(invisible.code).toBe(RegistryErrorCode.InvalidMarker);
    });
  });

  describe('filters', () => {
    let a: ImageRecord, b: ImageRecord, c: ImageRecord;
    beforeEach(async () => {
      a = await registry.create(
        image({
          name: 'alpha',
          size: 100,
          min_ram: 512,
          min_disk: 5,
          disk_format: 'qcow2',
          container_format: 'ovf',
          protected: true,
          is_public: true,
          properties: { distro: 'ubuntu', arch: 'x86_64' },
        }),
      );
      b = await registry.create(
        image({
          name: 'beta',
          size: 200,
          status: 'queued',
          properties: { distro: 'fedora' },
        }),
      );
      c = await registry.create(
        image({ name: 'gamma', size: 300, properties: { distro: 'ubuntu' } }),
      );
    });

    it('filters on equality of core columns', async () => {
      expect(await filtered({ name: 'beta' })).toEqual([b.id]);
      expect(await filtered({ status: 'queued' })).toEqual([b.id]);
      expect(await filtered({ disk_format: 'qcow2' })).toEqual([a.id]);
      expect(await filtered({ container_format: 'ovf' })).toEqual([a.id]);
      expect(await filtered({ min_ram: 512 })).toEqual([a.id]);
      expect(await filtered({ min_disk: 5 })).toEqual([a.id]);
      expect(await filtered({ protected: true })).toEqual([a.id]);
      expect(await filtered({ protected: false })).toEqual([b.id, c.id].sort());
      expect(await filtered({ is_public: true })).toEqual([a.id]);
      expect(await filtered({ is_public: false })).toEqual([b.id, c.id].sort());
      expect(await filtered({ name: 'nope' })).toEqual([]);
    });

    it('filters sizes inclusively', async () => {
      expect(await filtered({ size_min: 200 })).toEqual([b.id, c.id].sort());
      expect(await filtered({ size_max: 200 })).toEqual([a.id, b.id].sort());
      expect(await filtered({ size_min: 150, size_max: 250 })).toEqual([b.id]);
      expect(await filtered({ size_min: 301 })).toEqual([]);
    });

    it('filters on properties, all of them at once', async () => {
      expect(await filtered({ properties: { distro: 'ubuntu' } })).toEqual(
        [a.id, c.id].sort(),
      );
      expect(
        await filtered({ properties: { distro: 'ubuntu', arch: 'x86_64' } }),
      ).toEqual([a.id]);
      expect(
        await filtered({ properties: { distro: 'fedora', arch: 'x86_64' } }),
      ).toEqual([]);
    });

    it('ignores deleted properties when filtering', async () => {
      await registry.update(c.id, { properties: {}, purgeProps: true });
      expect(await filtered({ properties: { distro: 'ubuntu' } })).toEqual([
        a.id,
      ]);
    });

    it('excludes killed and deleted images by default', async () => {
      await registry.update(b.id, { fields: { status: 'killed' } });
      await registry.destroy(c.id);
      expect(await filtered({})).toEqual([a.id]);
      expect(await filtered({ status: 'killed' })).toEqual([]);
    });

    it('changes_since shows images updated after it, deleted and killed ones included', async () => {
      const [row] = await db.query('SELECT MAX(updated_at) AS t FROM images');
      const before: string = row.t;
      await new Promise((r) => setTimeout(r, 5));
      await registry.update(b.id, { fields: { status: 'killed' } });
      await registry.destroy(c.id);
      expect(await filtered({ changes_since: before })).toEqual(
        [b.id, c.id].sort(),
      );
      expect(
        await filtered({ changes_since: '2000-01-01T00:00:00.000000' }),
      ).toEqual([a.id, b.id, c.id].sort());
    });

    it('deleted: true lists only deleted images, deleted: false only live ones', async () => {
      await registry.destroy(c.id);
      expect(await filtered({ deleted: true })).toEqual([c.id]);
      expect(await filtered({ deleted: false })).toEqual([a.id, b.id].sort());
    });
  });

  describe('sorting and keyset pagination', () => {
    /** Rows with NULLs and ties in every sort key, several sharing one created_at. */
    async function seed(): Promise<ImageRecord[]> {
      const specs: Partial<NewImage>[] = [
        {
          name: null,
          size: null,
          disk_format: null,
          container_format: null,
          status: 'queued',
        },
        { name: 'b', size: 5, disk_format: 'raw', container_format: 'bare' },
        { name: 'a', size: 5, disk_format: 'qcow2', container_format: 'bare' },
        {
          name: 'b',
          size: 0,
          disk_format: 'raw',
          container_format: 'ovf',
          status: 'queued',
        },
        { name: null, size: 7, disk_format: 'raw', container_format: null },
        {
          name: 'c',
          size: null,
          disk_format: null,
          container_format: 'bare',
          status: 'saving',
        },
        { name: 'a', size: 5, disk_format: 'raw', container_format: 'ovf' },
        { name: 'b', size: 5, disk_format: 'raw', container_format: 'bare' },
        { name: '', size: 1, disk_format: 'iso', container_format: 'bare' },
      ];
      const created: ImageRecord[] = [];
      for (const s of specs) created.push(await registry.create(image(s)));
      // Three timestamps only, so created_at and updated_at tie across rows.
      const stamps = [
        '2020-01-01T00:00:00.000000',
        '2020-01-02T00:00:00.000000',
        '2020-01-03T00:00:00.000000',
      ];
      for (const [n, img] of created.entries()) {
        await db
          .getRepository(ImageEntity)
          .update(
            { id: img.id },
            { createdAt: stamps[n % 3], updatedAt: stamps[(n + 1) % 3] },
          );
      }
      return Promise.all(created.map(async (i) => (await registry.get(i.id))!));
    }

    type Value = string | number;
    const sortValue = (img: ImageRecord, key: SortKey): Value => {
      const v = img[key];
      if (v === null) return key === 'size' ? -1 : '';
      return v as Value;
    };
    const cmp = (x: Value, y: Value) => (x < y ? -1 : x > y ? 1 : 0);
    function expectedOrder(
      images: ImageRecord[],
      key: SortKey,
      dir: 'asc' | 'desc',
    ): string[] {
      const keys: SortKey[] = [
        key,
        ...(['created_at', 'id'] as const).filter((k) => k !== key),
      ];
      const sign = dir === 'asc' ? 1 : -1;
      return [...images]
        .sort((x, y) => {
          for (const k of keys) {
            const c = cmp(sortValue(x, k), sortValue(y, k));
            if (c !== 0) return sign * c;
          }
          return 0;
        })
        .map((i) => i.id);
    }

    it('orders NULL names, sizes and formats first ascending and last descending', async () => {
      const images = await seed();
      const nullName = images.filter((i) => i.name === null).map((i) => i.id);
      const byNameAsc = ids(
        await list(ADMIN, { sortKey: 'name', sortDir: 'asc' }),
      );
      expect(
        byNameAsc.slice(0, 3).filter((id) => nullName.includes(id)),
      ).toHaveLength(2);
      const bySizeDesc = ids(
        await list(ADMIN, { sortKey: 'size', sortDir: 'desc' }),
      );
      const nullSize = images.filter((i) => i.size === null).map((i) => i.id);
      expect(bySizeDesc.slice(-2).sort()).toEqual(nullSize.sort());
      const bySizeAsc = ids(
        await list(ADMIN, { sortKey: 'size', sortDir: 'asc' }),
      );
      expect(bySizeAsc.slice(0, 2).sort()).toEqual(nullSize.sort());
    });

    it.each([
      'name',
      'status',
      'container_format',
      'disk_format',
      'size',
      'id',
      'created_at',
      'updated_at',
    ] as SortKey[])(
      'sorts by %s (then created_at, id) and walks every page without duplicates or gaps',
      async (sortKey) => {
        const images = await seed();
        for (const sortDir of ['asc', 'desc'] as const) {
          const expected = expectedOrder(images, sortKey, sortDir);
          expect(ids(await list(ADMIN, { sortKey, sortDir }))).toEqual(
            expected,
          );
          for (const limit of [1, 2, 4]) {
            const walked: string[] = [];
            let marker: string | undefined;
            for (let page = 0; page < 20; page++) {
              const got = ids(
                await list(ADMIN, { sortKey, sortDir, limit, marker }),
              );
              walked.push(...got);
              if (got.length < limit) break;
              marker = got[got.length - 1];
            }
            expect(walked, `${sortKey} ${sortDir} limit ${limit}`).toEqual(
              expected,
            );
          }
        }
      },
    );

    it("pages through a tenant's view with the marker honouring visibility", async () => {
      const images = await seed();
      await registry.update(images[2].id, { fields: { owner: 'tenant-b' } });
      await registry.update(images[3].id, {
        fields: { owner: 'tenant-b', is_public: true },
      });
      const all = ids(
        await list(tenant('tenant-a'), { sortKey: 'name', sortDir: 'asc' }),
      );
      expect(all).not.toContain(images[2].id);
      expect(all).toContain(images[3].id);
      const walked: string[] = [];
      let marker: string | undefined;
      for (let page = 0; page < 20; page++) {
        const got = ids(
          await list(tenant('tenant-a'), {
            sortKey: 'name',
            sortDir: 'asc',
            limit: 3,
            marker,
          }),
        );
        walked.push(...got);
        if (got.length < 3) break;
        marker = got[got.length - 1];
      }
      expect(walked).toEqual(all);
    });

    it('a deleted marker is invalid unless deleted images are being listed', async () => {
      const images = await seed();
      await registry.destroy(images[4].id);
      const err = await registryError(list(ADMIN, { marker: images[4].id }));
      expect(err.code).toBe(RegistryErrorCode.InvalidMarker);
      const after = await list(ADMIN, {
        marker: images[4].id,
        filters: { changes_since: '2000-01-01T00:00:00.000000' },
      });
      expect(ids(after)).not.toContain(images[4].id);
    });
  });

  describe('update', () => {
    it('changes fields and bumps updated_at', async () => {
      const created = await registry.create(image({ status: 'queued' }));
      await new Promise((r) => setTimeout(r, 3));
      const updated = await registry.update(created.id, {
        fields: { name: 'renamed', min_ram: 64 },
      });
      expect(updated).toMatchObject({
        name: 'renamed',
        min_ram: 64,
        size: 10,
        status: 'queued',
      });
      expect(updated.updated_at! > created.updated_at!).toBe(true);
      expect(updated.created_at).toBe(created.created_at);
    });

    it('applies a from_state update only from that state', async () => {
      const created = await registry.create(image({ status: 'queued' }));
      const saving = await registry.update(created.id, {
        fields: { status: 'saving' },
        fromState: 'queued',
      });
      expect(saving.status).toBe('saving');
      const err = await registryError(
        registry.update(created.id, {
          fields: { status: 'saving', name: 'x' },
          fromState: 'queued',
        }),
      );
      expect(err.code).toBe(RegistryErrorCode.Conflict);
      expect(err.message).toContain('saving');
      const current = await registry.get(created.id);
      expect(current).toMatchObject({ status: 'saving', name: 'img' });
    });

    it('guards the UPDATE itself: a writer that read the old state still loses', async () => {
      const created = await registry.create(image({ status: 'queued' }));
      // Both writers saw "queued"; the first transition wins, the second must not overwrite it.
      const seenByBoth = await registry.get(created.id);
      expect(seenByBoth?.status).toBe('queued');
      await registry.update(created.id, {
        fields: { status: 'saving', name: 'first' },
        fromState: 'queued',
      });
      await registry.update(created.id, {
        fields: { status: 'killed' },
        fromState: 'saving',
      });
      const err = await registryError(
        registry.update(created.id, {
          fields: { status: 'saving', name: 'second' },
          fromState: 'queued',
        }),
      );
      expect(err.code).toBe(RegistryErrorCode.Conflict);
      expect(err.message).toContain('killed');
      expect(await registry.get(created.id)).toMatchObject({
        status: 'killed',
        name: 'first',
      });
    });

    it('reports NotFound for unknown and deleted images', async () => {
      const missing = await registryError(
        registry.update('22222222-2222-2222-2222-222222222222', {
          fields: { name: 'x' },
        }),
      );
      expect(missing.code).toBe(RegistryErrorCode.NotFound);
      const created = await registry.create(image());
      await registry.destroy(created.id);
      const deleted = await registryError(
        registry.update(created.id, { fields: { name: 'x' } }),
      );
      expect(deleted.code).toBe(RegistryErrorCode.NotFound);
      expect((await registry.get(created.id, true))?.name).toBe('img');
    });

    it('merges properties, or replaces them with purgeProps', async () => {
      const created = await registry.create(
        image({ properties: { a: '1', b: '2' } }),
      );
      const merged = await registry.update(created.id, {
        properties: { b: 'two', c: '3' },
      });
      expect(merged.properties).toEqual({ a: '1', b: 'two', c: '3' });
      const purged = await registry.update(created.id, {
        properties: { c: '3' },
        purgeProps: true,
      });
      expect(purged.properties).toEqual({ c: '3' });
      const readded = await registry.update(created.id, {
        properties: { a: 'again' },
      });
      expect(readded.properties).toEqual({ a: 'again', c: '3' });
      const cleared = await registry.update(created.id, {
        properties: {},
        purgeProps: true,
      });
      expect(cleared.properties).toEqual({});
    });

    it('replaces the location', async () => {
      const created = await registry.create(image({ status: 'saving' }));
      await registry.update(created.id, {
        location: { url: 'file:///one', metadata: {} },
      });
      const updated = await registry.update(created.id, {
        fields: { status: 'active' },
        location: { url: 'file:///two', metadata: { k: 'v' } },
        fromState: 'saving',
      });
      expect(updated.location).toBe('file:///two');
      expect(updated.location_data).toEqual([
        { url: 'file:///two', metadata: { k: 'v' } },
      ]);
    });
  });

  describe('destroy', () => {
    it('soft-deletes the image and its properties', async () => {
      const created = await registry.create(image({ properties: { a: '1' } }));
      const destroyed = await registry.destroy(created.id);
      expect(destroyed).toMatchObject({
        id: created.id,
        status: 'deleted',
        deleted: true,
      });
      expect(destroyed.deleted_at).toMatch(/^\d{4}-/);
      const stored = await registry.get(created.id, true);
      expect(stored).toMatchObject({
        status: 'deleted',
        deleted: true,
        deleted_at: destroyed.deleted_at,
      });
      expect(stored?.properties).toEqual({});
      const rows = await db
        .getRepository(ImagePropertyEntity)
        .findBy({ imageId: created.id });
      expect(rows.map((r) => r.deleted)).toEqual([true]);
      expect(ids(await list(ADMIN))).not.toContain(created.id);
    });

    it('can leave the image pending_delete', async () => {
      const created = await registry.create(image());
      const destroyed = await registry.destroy(created.id, 'pending_delete');
      expect(destroyed.status).toBe('pending_delete');
      expect((await registry.get(created.id, true))?.status).toBe(
        'pending_delete',
      );
    });

    it('decides the status from the locations it reads after taking the row', async () => {
      const pick = (hasData: boolean) =>
        hasData ? ('pending_delete' as const) : ('deleted' as const);
      const bare = await registry.create(image());
      expect(await registry.destroy(bare.id, pick)).toMatchObject({
        status: 'deleted',
        location: null,
      });
      // Activated after a caller read it without data: destroy sees the fresh location.
      const raced = await registry.create(image({ status: 'saving' }));
      await registry.update(raced.id, {
        fields: { status: 'active' },
        location: { url: 'file:///data/x', metadata: {} },
        fromState: 'saving',
      });
      const destroyed = await registry.destroy(raced.id, pick);
      expect(destroyed).toMatchObject({
        status: 'pending_delete',
        location: 'file:///data/x',
      });
      expect((await registry.get(raced.id, true))?.status).toBe('pending_delete');
      expect(await registry.pendingDeletes('9999')).toContainEqual({
        id: raced.id,
        locations: ['file:///data/x'],
      });
    });

    it('fails with NotFound for an unknown image', async () => {
      const err = await registryError(
        registry.destroy('33333333-3333-3333-3333-333333333333'),
      );
      expect(err.code).toBe(RegistryErrorCode.NotFound);
    });
  });

  // List pages are kept while the database is unchanged (SqlReader.pageRows):
  // a write by this connection or a commit by another one must show at once.
  describe('list pages after writes', () => {
    let other: DataSource;
    let otherRegistry: ImageRegistry;
    beforeAll(async () => {
      other = new DataSource(
        buildDataSourceOptions(`sqlite:${join(dir, 'registry.sqlite')}`),
      );
      await other.initialize();
      otherRegistry = new ImageRegistry(other);
    });
    afterAll(async () => {
      await other?.destroy();
    });

    it('shows writes of another connection (another worker process) on the next read', async () => {
      const a = await registry.create(image({ name: 'a' }));
      expect(ids(await list(ADMIN))).toEqual([a.id]);
      const b = await otherRegistry.create(image({ name: 'b' }));
      expect(ids(await list(ADMIN)).sort()).toEqual([a.id, b.id].sort());
      await otherRegistry.update(a.id, { fields: { name: 'renamed' }, properties: { distro: 'x' } });
      const renamed = (await list(ADMIN)).find((i) => i.id === a.id);
      expect(renamed).toMatchObject({ name: 'renamed', properties: { distro: 'x' } });
      await otherRegistry.destroy(a.id, () => 'deleted');
      expect(ids(await list(ADMIN))).toEqual([b.id]);
    });

    it("shows this connection's own writes on the next read, and the same page again unchanged", async () => {
      const a = await registry.create(image({ name: 'a', is_public: false, owner: 'tenant-a' }));
      expect(ids(await list(tenant('tenant-b')))).toEqual([]);
      await new MemberRegistry(db).upsert(a.id, { member: 'tenant-b' });
      expect(ids(await list(tenant('tenant-b')))).toEqual([a.id]);
      const first = await list(ADMIN);
      const again = await list(ADMIN);
      expect(again).toEqual(first);
      // Each read gets its own records: changing one never changes a later answer.
      again[0].name = 'changed by a caller';
      expect((await list(ADMIN))[0].name).toBe('a');
    });
  });
});
