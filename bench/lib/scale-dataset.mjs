// The scale phase's images as a pure function of their index, so the seeder
// and the bench (which picks markers and checks results) agree without
// passing 100,000 rows around: 50 tenants, public and private images,
// properties, some deleted/killed/queued, private images shared via members.
import { createHash } from 'node:crypto';

export const TENANTS = 50;
/** The member tenant the bench lists as: it owns 1/50 of the images and many are shared with it. */
export const MEMBER_TENANT = 'tenant-0';
export const ADMIN_TENANT = 'admin-tenant';
const T0 = Date.UTC(2026, 0, 1);
const DISK = ['raw', 'qcow2', 'vmdk', 'iso', 'ami', 'vhd'];
const CONTAINER = ['bare', 'ovf', 'ami', 'aki'];
const RAM = [0, 512, 1024, 2048, 4096];
const DISKS = [0, 10, 20, 40, 80];
const DISTROS = ['ubuntu', 'fedora', 'debian', 'centos', 'windows'];
const GiB = 1024 ** 3;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Glance's timestamp format, as src/common/timestamps.ts writes it. */
export function timestamp(ms) {
  return `${new Date(ms).toISOString().slice(0, 23)}000`;
}

export function imageId(i) {
  const h = createHash('md5').update(`scale-${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Creation time of image i: one image every 10 s from 2026-01-01. */
export function createdAt(i) {
  return timestamp(T0 + i * 10_000);
}

export function scaleImage(i) {
  const r = mulberry32(i * 2654435761 + 17);
  const owner = `tenant-${i % TENANTS}`;
  const isPublic = r() < 0.3;
  const roll = r();
  const status =
    roll < 0.05 ? 'deleted' : roll < 0.07 ? 'killed' : roll < 0.1 ? 'queued' : 'active';
  const queued = status === 'queued';
  const created = T0 + i * 10_000;
  const updated = created + Math.floor(r() * 86_400_000);
  const nameRoll = r();
  const image = {
    index: i,
    id: imageId(i),
    name: nameRoll < 0.01 ? null : `image-${Math.floor(r() * 2000)}`,
    diskFormat: queued && r() < 0.5 ? null : DISK[Math.floor(r() * DISK.length)],
    containerFormat: queued && r() < 0.5 ? null : CONTAINER[Math.floor(r() * CONTAINER.length)],
    size: queued ? null : Math.floor(r() * 10 * GiB),
    status,
    isPublic,
    minRam: RAM[Math.floor(r() * RAM.length)],
    minDisk: DISKS[Math.floor(r() * DISKS.length)],
    owner,
    protected: r() < 0.05,
    createdAt: timestamp(created),
    updatedAt: timestamp(updated),
    deleted: status === 'deleted',
    deletedAt: status === 'deleted' ? timestamp(updated) : null,
    properties: {
      os_distro: DISTROS[Math.floor(r() * DISTROS.length)],
      architecture: r() < 0.8 ? 'x86_64' : 'aarch64',
      build_id: `b-${i}`,
    },
    members: [],
  };
  if (!isPublic && owner !== MEMBER_TENANT) {
    if (r() < 0.1) image.members.push(MEMBER_TENANT);
    if (r() < 0.2) {
      const other = `tenant-${1 + Math.floor(r() * (TENANTS - 1))}`;
      if (other !== owner) image.members.push(other);
    }
  }
  return image;
}
