import {
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Put,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiError } from '../common/api-error.js';
import { contextOf } from '../common/request-context.accessor.js';
import { ImageRegistry } from '../registry/image.registry.js';
import { ImageCache } from './image-cache.service.js';
import { ManageCacheGuard } from './manage-cache.guard.js';

const VALID_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/;

/**
 * Glance's cache management API (cachemanage middleware + cached_images
 * controller), under /v1 and /v2 (the current glance-cache-manage calls
 * /v2). Answers 404 while the cache is off (CacheOffMiddleware).
 */
@ApiTags('image cache')
@Controller({ path: ['v1', 'v2'] })
@UseGuards(ManageCacheGuard)
export class CachedImagesController {
  constructor(
    private readonly cache: ImageCache,
    private readonly registry: ImageRegistry,
  ) {}

  @Get('cached_images')
  @ApiOperation({
    summary:
      "Images in this node's cache (times in epoch seconds; last_accessed 0 until the first hit)",
  })
  @ApiResponse({
    status: 200,
    description:
      '{"cached_images": [{"image_id", "hits", "last_accessed", "last_modified", "size"}]}',
  })
  @ApiResponse({ status: 403, description: 'manage_image_cache refused' })
  @ApiResponse({
    status: 404,
    description: 'The cache is off (IMAGE_CACHE_DIR unset)',
  })
  listCached() {
    return {
      cached_images: this.cache.list().map((e) => ({
        image_id: e.image_id,
        hits: e.hits,
        last_accessed: e.last_accessed,
        last_modified: e.last_modified,
        size: e.size,
      })),
    };
  }

  @Delete('cached_images/:id')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Evict one image from this node's cache (200 also when it was not cached)",
  })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'Evicted' })
  async deleteCached(@Param('id') id: string): Promise<void> {
    await this.cache.evict(id);
  }

  @Delete('cached_images')
  @HttpCode(200)
  @ApiOperation({ summary: "Evict every image from this node's cache" })
  @ApiResponse({ status: 200, description: '{"num_deleted": N}' })
  async deleteAllCached() {
    return { num_deleted: await this.cache.evictAll() };
  }

  @Get('queued_images')
  @ApiOperation({ summary: 'Images queued for prefetching, oldest first' })
  @ApiResponse({ status: 200, description: '{"queued_images": ["id", ...]}' })
  async listQueued() {
    return { queued_images: await this.cache.queued() };
  }

  @Put('queued_images/:id')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Queue an image for prefetching (no change when cached or queued already)',
  })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'Queued' })
  @ApiResponse({
    status: 404,
    description: 'No such image visible to the caller',
  })
  async queue(@Req() req: Request, @Param('id') id: string): Promise<void> {
    const ctx = contextOf(req);
    const image = VALID_ID.test(id)
      ? await this.registry.get(id, ctx.isAdmin)
      : null;
    if (
      !image ||
      image.deleted ||
      image.status === 'deleted' ||
      !(await this.registry.isVisible(ctx, image))
    ) {
      throw ApiError.notFound(`Image with identifier ${id} not found`);
    }
    await this.cache.queue(id);
  }

  @Delete('queued_images/:id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Remove an image from the prefetch queue' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'Removed' })
  async deleteQueued(@Param('id') id: string): Promise<void> {
    await this.cache.dequeue(id);
  }

  @Delete('queued_images')
  @HttpCode(200)
  @ApiOperation({ summary: 'Empty the prefetch queue' })
  @ApiResponse({ status: 200, description: '{"num_deleted": N}' })
  async deleteAllQueued() {
    return { num_deleted: await this.cache.dequeueAll() };
  }
}
