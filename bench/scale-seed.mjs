// Grows the scale phase's registry to `to` images through the service's own
// built code: its migrations (dist/src/registry) and its TypeORM entities,
// bulk inserts in transactions. Usage: node bench/scale-seed.mjs URL FROM TO
import 'reflect-metadata';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataSource } from 'typeorm';
import { scaleImage } from './lib/scale-dataset.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const dist = (p) => import(pathToFileURL(resolve(ROOT, 'dist/src/registry', p)).href);
const { buildDataSourceOptions } = await dist('data-source-options.js');
const { runMigrations } = await dist('run-migrations.js');
const { ImageEntity } = await dist('entities/image.entity.js');
const { ImagePropertyEntity } = await dist('entities/image-property.entity.js');
const { ImageMemberEntity } = await dist('entities/image-member.entity.js');

const [url, fromArg, toArg] = process.argv.slice(2);
const from = Number(fromArg);
const to = Number(toArg);
const CHUNK = 400;

const ds = new DataSource(buildDataSourceOptions(url));
await ds.initialize();
await runMigrations(ds);
const started = performance.now();
for (let start = from; start < to; start += CHUNK) {
  const images = [];
  for (let i = start; i < Math.min(to, start + CHUNK); i++) images.push(scaleImage(i));
  await ds.transaction(async (tx) => {
    // updateEntity(false): no read-back of generated ids per row.
    const insert = (entity, rows) =>
      tx.createQueryBuilder().insert().into(entity).values(rows).updateEntity(false).execute();
    await insert(
      ImageEntity,
      images.map(({ properties, members, index, ...row }) => row),
    );
    await insert(
      ImagePropertyEntity,
      images.flatMap((img) =>
        Object.entries(img.properties).map(([name, value]) => ({
          imageId: img.id,
          name,
          value,
          createdAt: img.createdAt,
          updatedAt: img.createdAt,
          deleted: false,
        })),
      ),
    );
    const members = images.flatMap((img) =>
      img.members.map((member) => ({
        imageId: img.id,
        member,
        canShare: false,
        status: 'accepted',
        createdAt: img.createdAt,
        updatedAt: img.createdAt,
        deleted: false,
      })),
    );
    if (members.length) await insert(ImageMemberEntity, members);
  });
}
// After a bulk load, as after any import: PostgreSQL's autovacuum and MariaDB's
// stats recalculation would get there within a minute or so, the bench measures
// right away. SQLite is left alone: the service refreshes its statistics itself.
const type = ds.options.type;
if (type === 'postgres') await ds.query('ANALYZE');
if (type === 'mysql' || type === 'mariadb')
  await ds.query('ANALYZE TABLE images, image_properties, image_members');
await ds.destroy();
process.stdout.write(
  JSON.stringify({ from, to, seconds: (performance.now() - started) / 1000 }) + '\n',
);
