import {
  Controller,
  Delete,
  Get,
  Head,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiHeader,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { imageListBody } from '../common/redact-locations.js';
import { contextOf } from '../common/request-context.accessor.js';
import { AppConfig } from '../config/app-config.js';
import { Policy } from '../policy/policy.decorator.js';
import type { ImageRecord } from '../registry/image-record.js';
import { ImageDownloader } from './download/image-downloader.js';
import { setImageMetaHeaders } from './image-headers.js';
import { parseImageListQuery } from './image-list-params.js';
import type { ImageMeta } from './image-meta.js';
import { ImageMetaHeaders, ImageMetaPipe } from './image-meta.pipe.js';
import { ImagesService, type ImageBody } from './images.service.js';
import { ApiImageListQuery, ApiImageMetaHeaders } from './images.openapi.js';

function requestBody(req: Request): ImageBody {
  const length = req.headers['content-length'];
  const contentLength = length !== undefined && /^\d+$/.test(length) ? Number(length) : null;
  const chunked = /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''));
  const hasBody = (contentLength !== null && contentLength > 0) || chunked;
  return {
    stream: hasBody ? req : null,
    contentType: req.headers['content-type'],
    contentLength,
  };
}

function copyFromHeader(req: Request): string | undefined {
  const value = req.headers['x-glance-api-copy-from'];
  const text = Array.isArray(value) ? value[0] : value;
  return text ? text.trim() : undefined;
}

/** Absolute URL of the image, as webob rewrites Glance's relative Location. */
function imageUrl(req: Request, id: string): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}/v1/images/${id}`;
}

function setImageHeaders(req: Request, res: Response, image: ImageRecord, withMeta: boolean): void {
  if (withMeta) setImageMetaHeaders(res, image);
  res.setHeader('Location', imageUrl(req, image.id));
  if (image.checksum) res.setHeader('ETag', image.checksum);
}

/** The Glance v1 /images resource. Thin: parse HTTP, call the service, shape the response. */
@ApiTags('images')
@Controller('v1/images')
export class ImagesController {
  constructor(
    private readonly images: ImagesService,
    private readonly downloader: ImageDownloader,
    private readonly config: AppConfig,
  ) {}

  @Get()
  @Policy('get_images')
  @ApiOperation({ summary: 'List images (brief): id, name, size, formats, checksum' })
  @ApiImageListQuery()
  @ApiResponse({ status: 200, description: '{"images": [...]}' })
  @ApiResponse({ status: 400, description: 'Invalid filter, sort key, sort dir, limit or marker' })
  async index(@Req() req: Request, @Query() query: Record<string, unknown>) {
    const ctx = contextOf(req);
    return imageListBody(await this.images.index(ctx, this.listQuery(query, req)));
  }

  @Get('detail')
  @Policy('get_images')
  @ApiOperation({ summary: 'List images with all metadata and properties' })
  @ApiImageListQuery()
  @ApiResponse({ status: 200, description: '{"images": [...]}' })
  async detail(@Req() req: Request, @Query() query: Record<string, unknown>) {
    const ctx = contextOf(req);
    return imageListBody(await this.images.detail(ctx, this.listQuery(query, req)));
  }

  @Head(':id')
  @Policy('get_image')
  @ApiOperation({ summary: 'Image metadata as x-image-meta-* headers' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'Metadata in headers; ETag = checksum' })
  @ApiResponse({ status: 404, description: 'No such image visible to the caller' })
  async meta(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const ctx = contextOf(req);
    const image = this.images.forCaller(ctx, await this.images.getVisible(ctx, id, false));
    setImageHeaders(req, res, image, true);
    // As webob's empty Response in Glance. Without it Node's HTTP clients (llhttp)
    // cannot tell the message ended and close the keep-alive connection.
    res.setHeader('Content-Length', '0');
    res.status(200).end();
  }

  @Get(':id')
  @Policy('get_image', 'download_image')
  @ApiOperation({ summary: 'Download the image bytes (active images only)' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'application/octet-stream with metadata headers' })
  @ApiResponse({ status: 404, description: 'Not found or not active' })
  async show(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const ctx = contextOf(req);
    const image = await this.images.getActive(ctx, id);
    const data = await this.images.openData(image);
    setImageHeaders(req, res, this.images.forCaller(ctx, image), true);
    await this.downloader.send(ctx, req, res, image, data);
  }

  @Post()
  @Policy('add_image')
  @ApiOperation({
    summary: 'Create an image: reserve it, or upload its bytes as application/octet-stream',
  })
  @ApiConsumes('application/octet-stream')
  @ApiBody({ required: false, schema: { type: 'string', format: 'binary' } })
  @ApiImageMetaHeaders()
  @ApiResponse({ status: 201, description: '{"image": {...}}' })
  @ApiResponse({ status: 400, description: 'Invalid metadata header or body' })
  @ApiResponse({ status: 409, description: 'An image with that id exists' })
  @ApiResponse({ status: 413, description: 'Image larger than IMAGE_SIZE_CAP' })
  async create(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @ImageMetaHeaders(ImageMetaPipe) meta: ImageMeta,
  ) {
    const ctx = contextOf(req);
    const image = await this.images.create(ctx, meta, requestBody(req), copyFromHeader(req));
    setImageHeaders(req, res, image, false);
    res.status(201);
    return { image: this.images.forCaller(ctx, image) };
  }

  @Put(':id')
  @Policy('modify_image')
  @ApiOperation({ summary: 'Update metadata, or upload the bytes of a queued image' })
  @ApiParam({ name: 'id' })
  @ApiImageMetaHeaders()
  @ApiConsumes('application/octet-stream')
  @ApiBody({ required: false, schema: { type: 'string', format: 'binary' } })
  @ApiHeader({
    name: 'x-glance-registry-purge-props',
    required: false,
    description: 'false keeps properties not named in this request (default true)',
  })
  @ApiResponse({ status: 200, description: '{"image": {...}}' })
  @ApiResponse({ status: 403, description: 'Deleted image, or immutable field of an active image' })
  @ApiResponse({ status: 409, description: 'Upload to an image that is not queued' })
  async update(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @ImageMetaHeaders(ImageMetaPipe) meta: ImageMeta,
  ) {
    const purge = req.headers['x-glance-registry-purge-props'];
    const ctx = contextOf(req);
    const image = await this.images.update(
      ctx,
      id,
      meta,
      requestBody(req),
      Array.isArray(purge) ? purge[0] : purge,
      copyFromHeader(req),
    );
    setImageHeaders(req, res, image, false);
    return { image: this.images.forCaller(ctx, image) };
  }

  @Delete(':id')
  @Policy('delete_image')
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete an image and its data' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'Deleted' })
  @ApiResponse({ status: 403, description: 'Protected, or pending delete' })
  @ApiResponse({ status: 404, description: 'No such image (or already deleted)' })
  async remove(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    await this.images.delete(contextOf(req), id);
    res.status(200).end();
  }

  private listQuery(query: Record<string, unknown>, req: Request) {
    return parseImageListQuery(query, contextOf(req), {
      defaultLimit: this.config.LIMIT_PARAM_DEFAULT,
      maxLimit: this.config.API_LIMIT_MAX,
    });
  }
}

