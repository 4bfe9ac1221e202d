import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseDisposition } from 'content-disposition';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8Header } from '../support/image-assertions.js';
import { createImage } from '../support/image-builder.js';
import { portOf } from '../support/raw-http.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const CHROMIUM = '/usr/bin/chromium';
// Debian's chromium (apt-get install chromium; .ci/run installs it). Without it the browser
// test is skipped on a developer's machine; REQUIRE_CHROMIUM=1 (.ci/run) makes that an error.
const chromiumInstalled = existsSync(CHROMIUM);
if (!chromiumInstalled && process.env.REQUIRE_CHROMIUM === '1') {
  throw new Error(`REQUIRE_CHROMIUM=1 but ${CHROMIUM} is missing: apt-get install chromium`);
}
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

type Operation = {
  parameters?: {
    name: string;
    in: string;
    description?: string;
    schema?: Record<string, unknown>;
    example?: unknown;
  }[];
  responses?: Record<string, { description?: string }>;
};

// The explorer and its document do not depend on the database: run them on
// SQLite only (the e2e suite runs again on PostgreSQL and MariaDB).
describe.runIf((process.env.TEST_DATABASE ?? 'sqlite') === 'sqlite')(
  'the explorer (/api-docs)',
  () => {
    describe('its document, built from the configuration in force', () => {
      let t: TestApp;
      let doc: {
        components: { securitySchemes: Record<string, unknown> };
        security: unknown[];
        paths: Record<string, Record<string, Operation>>;
      };
      beforeAll(async () => {
        t = await createTestApp({
          DISK_FORMATS: 'raw,qcow2,ploop',
          CONTAINER_FORMATS: 'bare,docker',
          IMAGE_SIZE_CAP: '1073741824',
          API_LIMIT_MAX: '77',
        });
        doc = (await request(t.http).get('/api-docs-json')).body;
      });
      afterAll(async () => t?.close());

      const param = (path: string, method: string, name: string) =>
        doc.paths[path][method].parameters?.find((p) => p.name === name);

      it('declares the identity headers of the strategy as apiKey schemes applied to every request', () => {
        expect(doc.components.securitySchemes).toEqual({
          'X-Tenant-Id': expect.objectContaining({
            type: 'apiKey',
            in: 'header',
            name: 'X-Tenant-Id',
          }),
          'X-User-Id': expect.objectContaining({
            type: 'apiKey',
            in: 'header',
            name: 'X-User-Id',
          }),
          'X-Roles': expect.objectContaining({
            type: 'apiKey',
            in: 'header',
            name: 'X-Roles',
          }),
        });
        expect(doc.security).toEqual([
          { 'X-Tenant-Id': [], 'X-User-Id': [], 'X-Roles': [] },
        ]);
      });

      it('lists the formats in force as enumerations and shows values instead of setting names', () => {
        expect(
          param('/v1/images', 'post', 'x-image-meta-disk_format')?.schema?.enum,
        ).toEqual(['raw', 'qcow2', 'ploop']);
        expect(
          param('/v1/images/{id}', 'put', 'x-image-meta-container_format')
            ?.schema?.enum,
        ).toEqual(['bare', 'docker']);
        expect(
          param('/v1/images/detail', 'get', 'disk_format')?.schema?.enum,
        ).toEqual(['raw', 'qcow2', 'ploop']);
        expect(
          param('/v1/images', 'post', 'x-image-meta-is_public')?.schema,
        ).toEqual({ type: 'boolean' });
        expect(
          param('/v1/images', 'post', 'x-image-meta-size')?.description,
        ).toContain('1073741824 bytes (1 GiB)');
        expect(param('/v1/images', 'get', 'limit')?.description).toContain(
          'at most 77',
        );
        expect(
          doc.paths['/v1/images'].post.responses?.['413'].description,
        ).toContain('1 GiB');
        const text = JSON.stringify(doc);
        expect(
          text.match(
            /\{\{[A-Z_]+\}\}|IMAGE_SIZE_CAP|DISK_FORMATS|API_LIMIT_MAX|IMAGE_MEMBER_QUOTA/g,
          ),
        ).toBeNull();
        // No parameter a browser cannot send (x-image-meta-property-<key>, property-<key>).
        const names = Object.values(doc.paths).flatMap((ops) =>
          Object.values(ops).flatMap((op) =>
            (op.parameters ?? []).map((p) => p.name),
          ),
        );
        expect(names.filter((n) => /[<>]/.test(n))).toEqual([]);
      });

      it('pre-fills purge-props false in the explorer and explains what true does', () => {
        const purge = param(
          '/v1/images/{id}',
          'put',
          'x-glance-registry-purge-props',
        );
        expect(purge?.schema?.example ?? purge?.example).toBe('false');
        expect(purge?.description).toMatch(/DELETES every custom property/);
      });

      it('keys documents to the strategy: keystone asks for a token', async () => {
        const keystone = await createTestApp({
          AUTH_STRATEGY: 'keystone',
          KEYSTONE_URL: 'http://127.0.0.1:1',
        });
        try {
          const res = await request(keystone.http).get('/api-docs-json');
          expect(Object.keys(res.body.components.securitySchemes)).toEqual([
            'X-Auth-Token',
          ]);
        } finally {
          await keystone.close();
        }
      });

      it('leaves the wire protocol alone: the explorer-only header is refused, the query ignored', async () => {
        const res = await request(t.http)
          .post('/v1/images')
          .set('x-image-meta-properties', 'a=b')
          .set('x-image-meta-name', 'x');
        expect(res.status).toBe(400);
        expect(res.text).toContain('Bad header: x-image-meta-properties');
      });
    });

    describe('downloads', () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await createTestApp();
      });
      afterAll(async () => t?.close());

      it('are attachments named <name>.<disk_format>, UTF-8 names as RFC 6266 filename*', async () => {
        const image = await createImage(t, {
          name: 'Debian 12 «bookworm»/amd64',
          disk_format: 'qcow2',
          headers: {
            'x-image-meta-name': utf8Header('Debian 12 «bookworm»/amd64'),
          },
          data: Buffer.from('bytes'),
        });
        const res = await request(t.http).get(`/v1/images/${image.id}`);
        expect(res.status).toBe(200);
        const disposition = parseDisposition(
          String(res.headers['content-disposition']),
        );
        expect(disposition.type).toBe('attachment');
        expect(disposition.parameters.filename).toBe(
          'Debian 12 «bookworm»_amd64.qcow2',
        );
        expect(String(res.headers['content-disposition'])).toMatch(
          /filename="[\x20-\x7e]+"/,
        );
        const head = await request(t.http).head(`/v1/images/${image.id}`);
        expect(head.headers['content-disposition']).toBeUndefined();
      });
    });

    describe.skipIf(!chromiumInstalled)('in Chromium, as a member tenant', () => {
      let t: TestApp;
      let base: string;
      let profile: string;
      let browser: BrowserContext;
      let page: Page;
      beforeAll(async () => {
        t = await createTestApp();
        base = `http://127.0.0.1:${await portOf(t)}`;
        profile = mkdtempSync(join(tmpdir(), 'explorer-chromium-'));
        browser = await chromium.launchPersistentContext(profile, {
          executablePath: CHROMIUM,
          headless: true,
          args: CHROMIUM_FLAGS,
          acceptDownloads: true,
        });
        page = browser.pages()[0] ?? (await browser.newPage());
      });
      afterAll(async () => {
        await browser?.close();
        await t?.close();
        if (profile) rmSync(profile, { recursive: true, force: true });
      });

      /** The expanded operation block, e.g. 'images', 'ImagesController_create'. */
      async function open(operationId: string) {
        const block = page.locator(`#operations-images-${operationId}`);
        await block.locator('.opblock-summary').first().click();
        await block
          .locator('.parameters-container, .opblock-body')
          .first()
          .waitFor();
        const tryOut = block.locator('button.try-out__btn');
        if (
          (await tryOut.count()) > 0 &&
          (await tryOut.innerText()).trim() === 'Try it out'
        )
          await tryOut.click();
        return block;
      }
      const field = (
        block: ReturnType<Page['locator']>,
        name: string,
        where = 'header',
      ) =>
        block
          .locator(`tr[data-param-name="${name}"][data-param-in="${where}"]`)
          .locator('input, select')
          .first();

      /** The response body as the page shows it (the browser does not keep request bodies' answers). */
      async function shown(block: ReturnType<Page['locator']>) {
        const text = await block
          .locator('.live-responses-table .response-col_description pre')
          .first()
          .innerText();
        return JSON.parse(text);
      }

      async function execute(
        block: ReturnType<Page['locator']>,
        method: string,
        path: RegExp,
      ) {
        const [response] = await Promise.all([
          page.waitForResponse(
            (r) =>
              r.request().method() === method &&
              path.test(new URL(r.url()).pathname),
          ),
          block.locator('button.execute').click(),
        ]);
        return response;
      }

      it('authorizes, uploads with a property, finds, renames, downloads and deletes an image', async () => {
        const data = randomBytes(64 * 1024 + 3);
        const file = join(profile, 'disk.img');
        writeFileSync(file, data);
        // Another image of the same tenant without the property: the filter must leave it out.
        const decoy = await createImage(
          t,
          { name: 'decoy', properties: { os_distro: 'fedora' } },
          as('tenant-a'),
        );

        await page.goto(`${base}/api-docs`);
        await page.locator('button.authorize').first().click();
        for (const [scheme, value] of [
          ['X-Tenant-Id', 'tenant-a'],
          ['X-Roles', 'member'],
        ]) {
          const form = page
            .locator('.modal-ux .auth-container')
            .filter({ hasText: scheme });
          await form.locator('input').fill(value);
          await form.locator('button.authorize').click();
        }
        await page.locator('.modal-ux button.btn-done').first().click();

        const create = await open('ImagesController_create');
        await field(create, 'x-image-meta-name').fill('explorer upload');
        await field(create, 'x-image-meta-disk_format').selectOption('qcow2');
        await field(create, 'x-image-meta-container_format').selectOption(
          'bare',
        );
        await field(create, 'x-image-meta-properties').fill(
          'os_distro=debian; hw_note=é ü',
        );
        await create.locator('input[type="file"]').setInputFiles(file);
        const created = await execute(create, 'POST', /^\/v1\/images$/);
        expect(created.status()).toBe(201);
        const image = (await shown(create)).image;
        expect(image).toMatchObject({
          name: 'explorer upload',
          owner: 'tenant-a',
          status: 'active',
          size: data.length,
          properties: { os_distro: 'debian', hw_note: 'é ü' },
        });
        if (process.env.EXPLORER_SCREENSHOT)
          await page.screenshot({
            path: process.env.EXPLORER_SCREENSHOT,
            fullPage: false,
          });

        const detail = await open('ImagesController_detail');
        await field(detail, 'properties', 'query').fill(
          '{"os_distro": "debian"}',
        );
        const listed = await execute(detail, 'GET', /^\/v1\/images\/detail$/);
        expect(
          new URL(listed.url()).searchParams.get('property-os_distro'),
        ).toBe('debian');
        const ids = (await shown(detail)).images.map(
          (i: { id: string }) => i.id,
        );
        expect(ids).toEqual([image.id]);
        expect(ids).not.toContain(decoy.id);

        const update = await open('ImagesController_update');
        await field(update, 'id', 'path').fill(image.id);
        expect(
          await field(update, 'x-glance-registry-purge-props').inputValue(),
        ).toBe('false');
        await field(update, 'x-image-meta-name').fill('renamed');
        const updated = await execute(
          update,
          'PUT',
          new RegExp(`^/v1/images/${image.id}$`),
        );
        expect(updated.status()).toBe(200);
        expect((await shown(update)).image).toMatchObject({
          name: 'renamed',
          properties: { os_distro: 'debian', hw_note: 'é ü' },
        });

        const show = await open('ImagesController_show');
        await field(show, 'id', 'path').fill(image.id);
        const got = await execute(
          show,
          'GET',
          new RegExp(`^/v1/images/${image.id}$`),
        );
        expect(got.status()).toBe(200);
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          show.locator('a', { hasText: 'Download file' }).click(),
        ]);
        expect(download.suggestedFilename()).toBe('renamed.qcow2');
        expect(readFileSync(await download.path()).equals(data)).toBe(true);

        const remove = await open('ImagesController_remove');
        await field(remove, 'id', 'path').fill(image.id);
        const deleted = await execute(
          remove,
          'DELETE',
          new RegExp(`^/v1/images/${image.id}$`),
        );
        expect(deleted.status()).toBe(200);
        const head = await request(t.http)
          .head(`/v1/images/${image.id}`)
          .set(ADMIN);
        expect(head.headers['x-image-meta-status']).toBe('deleted');
      });
    });
  },
);
