import { Injectable } from '@nestjs/common';
import { ApiError, ApiErrorCode } from '../common/api-error.js';
import type { RequestContext } from '../common/request-context.js';
import { AppConfig } from '../config/app-config.js';
import { ImagesService } from '../images/images.service.js';
import { PolicyService } from '../policy/policy.service.js';
import type { ImageRecord } from '../registry/image-record.js';
import {
  MemberRegistry,
  type MemberRecord,
  type MembershipChange,
} from '../registry/member.registry.js';

export interface MemberView {
  member_id: string;
  can_share: boolean;
}

export interface SharedImageView {
  image_id: string;
  can_share: boolean;
}

/** Width of image_members.member. */
const MAX_MEMBER_LENGTH = 255;

/** No tenant id holds these, and PostgreSQL cannot even compare text with a NUL (a 500). */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Glance v1 image membership rules (api/v1/members.py over
 * registry/api/v1/members.py). Callers who cannot see an image get 404;
 * callers who can see it but may not share it get 404 too, as the v1 API
 * turns the registry's 403 into a 404.
 */
@Injectable()
export class MembersService {
  constructor(
    private readonly images: ImagesService,
    private readonly members: MemberRegistry,
    private readonly policy: PolicyService,
    private readonly config: AppConfig,
  ) {}

  /** The owner and admins see every member; anyone else only their own membership. */
  async list(ctx: RequestContext, imageId: string): Promise<MemberView[]> {
    this.policy.enforce(ctx, 'get_members');
    const image = await this.liveImage(ctx, imageId);
    let rows: MemberRecord[] = [];
    if (seesAllMembers(ctx, image))
      rows = await this.members.listForImage(image.id);
    else if (ctx.owner !== null)
      rows = await this.members.listForImage(image.id, ctx.owner);
    return rows.map((r) => ({ member_id: r.member, can_share: r.can_share }));
  }

  /** PUT /images/{id}/members/{member}: body `{"member": {"can_share": bool}}` is optional. */
  async put(
    ctx: RequestContext,
    imageId: string,
    member: string,
    body: unknown,
  ): Promise<void> {
    const image = await this.imageToShare(ctx, imageId, 'modify_member');
    checkMemberId(member);
    const canShare = parseMemberBody(body);
    const isNew = (await this.members.find(image.id, member)) === null;
    if (isNew) this.enforceQuota((await this.members.count(image.id)) + 1);
    await this.members.upsert(image.id, { member, canShare });
  }

  /** PUT /images/{id}/members: body `{"memberships": [{"member_id", "can_share"?}]}`. */
  async replace(
    ctx: RequestContext,
    imageId: string,
    body: unknown,
  ): Promise<void> {
    const image = await this.imageToShare(ctx, imageId, 'modify_member');
    const changes = parseMemberships(body);

    // A sharing member cannot see (so cannot remove) other tenants' memberships.
    const visibleMember = seesAllMembers(ctx, image)
      ? undefined
      : (ctx.owner ?? undefined);
    const after = new Set(changes.map((c) => c.member));
    if (visibleMember !== undefined) {
      for (const row of await this.members.listForImage(image.id)) {
        if (row.member !== visibleMember) after.add(row.member);
      }
    }
    this.enforceQuota(after.size);
    await this.members.replaceAll(image.id, changes, visibleMember);
  }

  async remove(
    ctx: RequestContext,
    imageId: string,
    member: string,
  ): Promise<void> {
    const image = await this.imageToShare(ctx, imageId, 'delete_member');
    checkMemberId(member);
    const visible = seesAllMembers(ctx, image) || member === ctx.owner;
    if (!visible || !(await this.members.remove(image.id, member))) {
      throw ApiError.notFound('Membership could not be found.');
    }
  }

  /** GET /shared-images/{tenant}: no policy action, filtered by what the caller may see. */
  async sharedWith(
    ctx: RequestContext,
    tenant: string,
  ): Promise<SharedImageView[]> {
    if (tenant.length > MAX_MEMBER_LENGTH || CONTROL_CHARS.test(tenant))
      return [];
    return this.members.listSharedWith(tenant, {
      isAdmin: ctx.isAdmin,
      owner: ctx.owner,
    });
  }

  /** A visible image that is not deleted (admins can otherwise see deleted ones). */
  /** Glance's order of checks for a membership change: caller, policy, image, right to share. */
  private async imageToShare(ctx: RequestContext, imageId: string, action: string) {
    requireAuthenticated(ctx);
    this.policy.enforce(ctx, action);
    const image = await this.liveImage(ctx, imageId);
    await this.requireSharable(ctx, image);
    return image;
  }

  private async liveImage(
    ctx: RequestContext,
    imageId: string,
  ): Promise<ImageRecord> {
    const image = await this.images.getVisible(ctx, imageId);
    if (image.deleted || image.status === 'deleted') {
      throw ApiError.notFound(
        `Image with identifier ${imageId} has been deleted.`,
      );
    }
    return image;
  }

  /** Glance's is_image_sharable: admins, the owner, or a member with can_share. */
  private async requireSharable(
    ctx: RequestContext,
    image: ImageRecord,
  ): Promise<void> {
    if (ctx.isAdmin) return;
    if (ctx.owner !== null) {
      if (ctx.owner === image.owner) return;
      const own = await this.members.find(image.id, ctx.owner);
      if (own?.can_share) return;
    }
    throw ApiError.notFound('Forbidden: No permission to share that image');
  }

  private enforceQuota(attempted: number): void {
    const maximum = this.config.IMAGE_MEMBER_QUOTA;
    if (maximum >= 0 && attempted > maximum) {
      throw new ApiError(
        ApiErrorCode.PayloadTooLarge,
        `The limit has been exceeded on the number of allowed image members for this image. Attempted: ${attempted}, Maximum: ${maximum}`,
      );
    }
  }
}

/** Whether the caller sees every membership of the image (Glance's image_member_find filter). */
function seesAllMembers(ctx: RequestContext, image: ImageRecord): boolean {
  return ctx.isAdmin || image.owner === ctx.owner;
}

function requireAuthenticated(ctx: RequestContext): void {
  if (ctx.owner === null && !ctx.isAdmin) {
    throw new ApiError(ApiErrorCode.Unauthorized, 'No authenticated user');
  }
}

function invalid(reason: string): ApiError {
  return ApiError.badRequest(`Invalid membership association: ${reason}`);
}

function checkMemberId(member: unknown): asserts member is string {
  if (typeof member !== 'string' || member.length === 0) {
    throw invalid('member_id must be a non-empty string');
  }
  if (member.length > MAX_MEMBER_LENGTH) {
    throw invalid(`member_id is longer than ${MAX_MEMBER_LENGTH} characters`);
  }
  if (CONTROL_CHARS.test(member)) {
    throw invalid('member_id must not contain control characters');
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Python's bool(): Glance applies it to can_share, so "false" (a non-empty string) is true. */
function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return Boolean(value);
}

/** can_share from an optional `{"member": {"can_share": ...}}`; undefined when not given. */
function parseMemberBody(body: unknown): boolean | undefined {
  if (body === undefined) return undefined;
  if (!isObject(body)) throw invalid('the body must be a JSON object');
  if (body.member === undefined) return undefined;
  if (!isObject(body.member)) throw invalid("'member' must be an object");
  return 'can_share' in body.member ? truthy(body.member.can_share) : undefined;
}

/** The memberships of a replace-all body; a tenant listed twice keeps its last entry. */
function parseMemberships(body: unknown): MembershipChange[] {
  if (!isObject(body) || !('memberships' in body)) {
    throw invalid("the body must be an object with a 'memberships' list");
  }
  const list = body.memberships;
  if (!Array.isArray(list)) throw invalid("'memberships' must be a list");
  const byMember = new Map<string, MembershipChange>();
  for (const entry of list) {
    if (!isObject(entry)) throw invalid('each membership must be an object');
    checkMemberId(entry.member_id);
    byMember.delete(entry.member_id);
    byMember.set(entry.member_id, {
      member: entry.member_id,
      canShare: 'can_share' in entry ? truthy(entry.can_share) : undefined,
    });
  }
  return [...byMember.values()];
}
