import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { nowTimestamp } from '../common/timestamps.js';
import { ImageMemberEntity } from './entities/image-member.entity.js';
import { serialTransaction } from './serial-transaction.js';

/** A live (not deleted) membership: `image_id` is shared with tenant `member`. */
export interface MemberRecord {
  image_id: string;
  member: string;
  can_share: boolean;
  status: string;
  created_at: string;
  updated_at: string | null;
}

/** One membership to add or update. */
export interface MembershipChange {
  member: string;
  /** Undefined keeps an existing membership's flag; new memberships get false. */
  canShare?: boolean;
}

/** Who asks for a tenant's shared images (Glance's image_member_find filter). */
export interface MemberViewer {
  isAdmin: boolean;
  owner: string | null;
}

/**
 * Every SQL statement about image members. Operations are keyed by
 * (image, member), not by row, so a duplicate row left by two racing adds
 * (the table has no unique key) is read, updated and deleted as one.
 */
@Injectable()
export class MemberRegistry {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** The image's memberships in the order they were made; only `member`'s when given. */
  async listForImage(
    imageId: string,
    member?: string,
  ): Promise<MemberRecord[]> {
    const rows = await this.db.getRepository(ImageMemberEntity).find({
      where: {
        imageId,
        deleted: false,
        ...(member !== undefined ? { member } : {}),
      },
      order: { id: 'ASC' },
    });
    return uniqueBy(rows, (r) => r.member).map(toRecord);
  }

  async find(imageId: string, member: string): Promise<MemberRecord | null> {
    const row = await this.db.getRepository(ImageMemberEntity).findOne({
      where: { imageId, member, deleted: false },
      order: { id: 'ASC' },
    });
    return row ? toRecord(row) : null;
  }

  /** Number of distinct tenants the image is shared with. */
  async count(imageId: string): Promise<number> {
    const raw = await this.db
      .getRepository(ImageMemberEntity)
      .createQueryBuilder('m')
      .select('COUNT(DISTINCT m.member)', 'n')
      .where('m.image_id = :imageId', { imageId })
      .andWhere('m.deleted = :deleted', { deleted: false })
      .getRawOne<{ n: number | string }>();
    return Number(raw?.n ?? 0);
  }

  /** Adds the membership, or updates its can_share when one is given. */
  async upsert(imageId: string, change: MembershipChange): Promise<void> {
    await serialTransaction(this.db, (tx) =>
      this.apply(tx, imageId, change, nowTimestamp()),
    );
  }

  /**
   * Makes `changes` the image's memberships in one transaction. With
   * `visibleMember` the caller sees only that tenant's membership (a sharing
   * member, as in Glance): memberships of others it does not list are kept.
   */
  async replaceAll(
    imageId: string,
    changes: MembershipChange[],
    visibleMember?: string,
  ): Promise<void> {
    const now = nowTimestamp();
    await serialTransaction(this.db, async (tx) => {
      const listed = new Set(changes.map((c) => c.member));
      const existing = await tx.find(ImageMemberEntity, {
        where: { imageId, deleted: false },
      });
      const stale = new Set(
        existing
          .map((row) => row.member)
          .filter(
            (m) =>
              !listed.has(m) &&
              (visibleMember === undefined || m === visibleMember),
          ),
      );
      for (const member of stale)
        await this.softDelete(tx, imageId, member, now);
      for (const change of changes) await this.apply(tx, imageId, change, now);
    });
  }

  /** Soft-deletes the membership; false when there was none. */
  async remove(imageId: string, member: string): Promise<boolean> {
    return this.softDelete(this.db.manager, imageId, member, nowTimestamp());
  }

  /**
   * Images shared with `member`, as `viewer` may see them: admins see all;
   * others only memberships of images they own or their own memberships.
   */
  async listSharedWith(
    member: string,
    viewer: MemberViewer,
  ): Promise<{ image_id: string; can_share: boolean }[]> {
    const qb = this.db
      .getRepository(ImageMemberEntity)
      .createQueryBuilder('m')
      .innerJoin('m.image', 'i')
      .where('m.member = :member', { member })
      .andWhere('m.deleted = :mdel', { mdel: false })
      .andWhere('i.deleted = :idel', { idel: false })
      .orderBy('m.id', 'ASC');
    if (!viewer.isAdmin) {
      if (viewer.owner === null) qb.andWhere('i.owner IS NULL');
      else
        qb.andWhere('(i.owner = :viewer OR m.member = :viewer)', {
          viewer: viewer.owner,
        });
    }
    const rows = uniqueBy(await qb.getMany(), (r) => r.imageId);
    return rows.map((r) => ({ image_id: r.imageId, can_share: r.canShare }));
  }

  private async apply(
    tx: EntityManager,
    imageId: string,
    change: MembershipChange,
    now: string,
  ): Promise<void> {
    const where = { imageId, member: change.member, deleted: false };
    if (!(await tx.existsBy(ImageMemberEntity, where))) {
      await tx.insert(ImageMemberEntity, {
        imageId,
        member: change.member,
        canShare: change.canShare ?? false,
        status: 'pending',
        createdAt: now,
        updatedAt: now,
        deleted: false,
      });
    } else if (change.canShare !== undefined) {
      await tx.update(ImageMemberEntity, where, {
        canShare: change.canShare,
        updatedAt: now,
      });
    }
  }

  private async softDelete(
    tx: EntityManager,
    imageId: string,
    member: string,
    now: string,
  ): Promise<boolean> {
    const result = await tx.update(
      ImageMemberEntity,
      { imageId, member, deleted: false },
      { deleted: true, deletedAt: now, updatedAt: now },
    );
    return (result.affected ?? 0) > 0;
  }
}

function toRecord(row: ImageMemberEntity): MemberRecord {
  return {
    image_id: row.imageId,
    member: row.member,
    can_share: row.canShare,
    status: row.status,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

/** First row of each key, order kept. */
function uniqueBy<T>(rows: T[], key: (row: T) => string): T[] {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const k = key(row);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
