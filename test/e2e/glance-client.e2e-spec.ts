import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, waitFor } from '../support/image-assertions.js';
import { glanceCliAvailable } from '../support/glance-cli.js';
import { createTestApp, type TestApp } from '../support/test-app.js';
import { clientEnv } from '../support/client-env.js';

const run = promisify(execFile);

const hasGlance = glanceCliAvailable();

const DATA = randomBytes(256 * 1024 + 11);
const REMOTE = randomBytes(128 * 1024 + 5);

/** `glance` prints `| Property | Value |` tables; this reads the rows into a map. */
function parseShow(output: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const m = /^\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|$/.exec(line);
    // Long values wrap onto rows with an empty name; none of the checked ones does.
    if (m && m[1] !== '' && m[1] !== 'Property') fields[m[1]] = m[2];
  }
  return fields;
}

/** Rows of `glance image-list`, keyed by column header. */
function parseList(output: string): Record<string, string>[] {
  const rows = output
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  const [header, ...body] = rows;
  return body.map((cells) =>
    Object.fromEntries(header.map((h, i) => [h, cells[i]])),
  );
}

// Needs Debian's python3-glanceclient (`glance`, which still speaks image API v1).
// Without it this real-client check is skipped, unless REQUIRE_GLANCE_CLIENT=1 makes that an error.
describe.skipIf(!hasGlance)(
  'the glance CLI (python3-glanceclient, --os-image-api-version 1)',
  () => {
    let t: TestApp;
    let apiUrl: string;
    let remote: http.Server;
    let remoteUrl: string;
    let dataFile: string;

    /**
     * Runs `glance` with stdin closed: glanceclient reads image data from any
     * stdin that is not a TTY, and a closed one tells it there is none.
     */
    async function glance(...args: string[]): Promise<string> {
      const env = clientEnv();
      const common = [
        '--os-image-api-version',
        '1',
        '--os-image-url',
        apiUrl,
        '--os-auth-token',
        'x',
      ];
      try {
        const { stdout } = await run(
          'bash',
          ['-c', 'exec "$@" <&-', 'glance', 'glance', ...common, ...args],
          { env, timeout: 20_000 },
        );
        return stdout;
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(
          `glance ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`,
        );
      }
    }

    async function show(id: string): Promise<Record<string, string>> {
      return parseShow(await glance('image-show', id));
    }

    beforeAll(async () => {
      t = await createTestApp({ EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1/32' });
      await t.app.listen(0, '127.0.0.1');
      apiUrl = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
      remote = http.createServer((req, res) => {
        res.writeHead(200, { 'content-length': String(REMOTE.length) });
        res.end(req.method === 'HEAD' ? undefined : REMOTE);
      });
      await new Promise<void>((resolve) =>
        remote.listen(0, '127.0.0.1', resolve),
      );
      remoteUrl = `http://127.0.0.1:${(remote.address() as AddressInfo).port}/remote.img`;
      dataFile = join(t.dir, 'upload.img');
      writeFileSync(dataFile, DATA);
    });
    afterAll(async () => {
      await t?.close();
      if (remote) {
        remote.closeAllConnections();
        await new Promise((resolve) => remote.close(resolve));
      }
    });

    it('uploads with --file (scenario 1) and downloads the same bytes', async () => {
      const created = parseShow(
        await glance(
          'image-create',
          '--name',
          'cli-file',
          '--disk-format',
          'qcow2',
          '--container-format',
          'bare',
          '--property',
          'os_distro=debian',
          '--file',
          dataFile,
        ),
      );
      expect(created).toMatchObject({
        name: 'cli-file',
        status: 'active',
        size: String(DATA.length),
        checksum: md5(DATA),
        disk_format: 'qcow2',
        container_format: 'bare',
        "Property 'os_distro'": 'debian',
      });
      expect(created.location).toBeUndefined();

      const out = join(t.dir, 'download.img');
      await glance('image-download', '--file', out, created.id);
      expect(md5(readFileSync(out))).toBe(md5(DATA));
    });

    it('registers a --location (scenario 3) without showing it', async () => {
      const output = await glance(
        'image-create',
        '--name',
        'cli-location',
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        '--location',
        remoteUrl,
      );
      expect(output).not.toContain(remoteUrl);
      const created = parseShow(output);
      expect(created).toMatchObject({
        status: 'active',
        size: String(REMOTE.length),
      });
      const out = join(t.dir, 'location.img');
      await glance('image-download', '--file', out, created.id);
      expect(readFileSync(out).equals(REMOTE)).toBe(true);
    });

    it('copies with --copy-from (scenario 2) in the background', async () => {
      const created = parseShow(
        await glance(
          'image-create',
          '--name',
          'cli-copy',
          '--disk-format',
          'raw',
          '--container-format',
          'bare',
          '--copy-from',
          remoteUrl,
        ),
      );
      expect(created.status).toBe('queued');
      let status = '';
      await waitFor(
        async () => (status = (await show(created.id)).status) === 'active',
        `the copy to finish (status ${status})`,
        15_000,
      );
      expect(await show(created.id)).toMatchObject({
        size: String(REMOTE.length),
        checksum: md5(REMOTE),
      });
    });

    it('reserves an image (scenario 4), lists, updates and deletes it', async () => {
      const reserved = parseShow(
        await glance(
          'image-create',
          '--name',
          'cli-reserved',
          '--disk-format',
          'raw',
          '--container-format',
          'bare',
        ),
      );
      expect(reserved).toMatchObject({
        name: 'cli-reserved',
        status: 'queued',
        size: '0',
      });

      // Admin without a tenant (noauth): private images are listed only with --all-tenants.
      const listed = parseList(await glance('image-list', '--all-tenants'));
      expect(listed.map((row) => row.Name)).toEqual(
        expect.arrayContaining([
          'cli-reserved',
          'cli-file',
          'cli-location',
          'cli-copy',
        ]),
      );
      expect(listed.find((row) => row.ID === reserved.id)).toMatchObject({
        Name: 'cli-reserved',
        'Disk Format': 'raw',
        'Container Format': 'bare',
        Status: 'queued',
      });

      const updated = parseShow(
        await glance(
          'image-update',
          '--name',
          'cli-renamed',
          '--property',
          'purpose=test',
          reserved.id,
        ),
      );
      expect(updated).toMatchObject({
        name: 'cli-renamed',
        "Property 'purpose'": 'test',
      });

      const uploaded = parseShow(
        await glance('image-update', '--file', dataFile, reserved.id),
      );
      expect(uploaded).toMatchObject({ status: 'active', checksum: md5(DATA) });

      await glance('image-delete', reserved.id);
      const after = parseList(await glance('image-list', '--all-tenants'));
      expect(after.map((row) => row.ID)).not.toContain(reserved.id);
      // An admin still sees deleted images, as in Glance.
      expect(await show(reserved.id)).toMatchObject({
        status: 'deleted',
        deleted: 'True',
      });
      await expect(
        glance(
          'image-download',
          '--file',
          join(t.dir, 'gone.img'),
          reserved.id,
        ),
      ).rejects.toThrow(/404|not found/i);
    });

    it('shares an image with member-create, member-list and member-delete', async () => {
      const image = parseShow(
        await glance(
          'image-create',
          '--name',
          'cli-shared',
          '--disk-format',
          'raw',
          '--container-format',
          'bare',
          '--file',
          dataFile,
        ),
      );
      await glance('member-create', image.id, 'tenant-b');
      const byImage = parseList(await glance('member-list', '--image-id', image.id));
      expect(byImage).toEqual([
        expect.objectContaining({ 'Image ID': image.id, 'Member ID': 'tenant-b' }),
      ]);
      const byTenant = parseList(await glance('member-list', '--tenant-id', 'tenant-b'));
      expect(byTenant.map((row) => row['Image ID'])).toContain(image.id);

      await glance('member-delete', image.id, 'tenant-b');
      expect(parseList(await glance('member-list', '--image-id', image.id))).toEqual([]);
    });
  },
);
