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
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiError } from '../common/api-error.js';
import { readJsonBody } from '../common/read-json-body.js';
import { imageListBody, redactLocations } from '../common/redact-locations.js';
import { contextOf } from '../common/request-context.accessor.js';
import { AppConfig } from '../config/app-config.js';
import { Policy } from '../policy/policy.decorator.js';
import type { ImageRecord } from '../registry/image-record.js';
import { ImageDownloader } from './download/image-downloader.js';
import { downloadDisposition, setImageMetaHeaders } from './image-headers.js';
import { parseImageListQuery } from './image-list-params.js';
import type { ImageMeta } from './image-meta.js';
import { ImageMetaHeaders, ImageMetaPipe } from './image-meta.pipe.js';
import { ImagesService, type ImageBody } from './images.service.js';
import { ApiImageListQuery, ApiImageMetaHeaders, ApiPurgePropsHeader } from './images.openapi.js';
import { imageMetaFromJson } from '../sdk-compat/json-image-meta.js';
import { sdkNextLink } from '../sdk-compat/next-link.js';
import { isOpenStackSdkRequest } from '../sdk-compat/sdk-request.js';

function requestBody(req: Request): ImageBody {
  const length = req.headers['content-length'];
  const contentLength = length !== undefined && /^\d+$/.test(length) ? Number(length) : null;
  const chunked = /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''));
  const hasBody = (contentLength !== null && contentLength > 0) || chunked;
  return {
    stream: hasBody ? req : null,
    // openstacksdk uploads without a Content-Type (Glance v1 would refuse it).
    contentType:
      req.headers['content-type'] ??
      (isOpenStackSdkRequest(req) ? 'application/octet-stream' : undefined),
    contentLength,
  };
}

const NO_BODY: ImageBody = { stream: null, contentType: undefined, contentLength: null };

function isJson(req: Request): boolean {
  const type = String(req.headers['content-type'] ?? '');
  return type.split(';')[0].trim().toLowerCase() === 'application/json';
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
    const list = this.listQuery(query, req);
    const images = await this.images.index(ctx, list);
    return imageListBody(images, sdkNextLink(req, images, list.limit));
  }

  @Get('detail')
  @Policy('get_images')
  @ApiOperation({ summary: 'List images with all metadata and properties' })
  @ApiImageListQuery()
  @ApiResponse({ status: 200, description: '{"images": [...]}' })
  async detail(@Req() req: Request, @Query() query: Record<string, unknown>) {
    const ctx = contextOf(req);
    const list = this.listQuery(query, req);
    const images = await this.images.detail(ctx, list);
    return imageListBody(images, sdkNextLink(req, images, list.limit));
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
  @ApiResponse({
    status: 200,
    description: 'application/octet-stream with metadata headers, saved as `<name>.<disk_format>`',
  })
  @ApiResponse({ status: 404, description: 'Not found or not active' })
  async show(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const ctx = contextOf(req);
    if (isOpenStackSdkRequest(req)) {
      // openstacksdk's get_image/find_image read this as JSON metadata (any status but
      // deleted: after delete_image the SDK expects find_image to find nothing).
      const visible = await this.images.getVisible(ctx, id);
      if (visible.deleted) throw ApiError.notFound(`Image with identifier ${id} not found`);
      const image = this.images.forCaller(ctx, visible);
      res.status(200).json(redactLocations({ image }));
      return;
    }
    const image = await this.images.getActive(ctx, id);
    const data = await this.images.openData(image);
    setImageHeaders(req, res, this.images.forCaller(ctx, image), true);
    res.setHeader('Content-Disposition', downloadDisposition(image));
    await this.downloader.send(ctx, req, res, image, data);
  }

  @Get(':id/file')
  @Policy('get_image', 'download_image')
  @ApiOperation({
    summary: 'Download the image bytes, Content-MD5 = checksum (openstacksdk download_image)',
  })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, description: 'application/octet-stream' })
  @ApiResponse({ status: 404, description: 'Not found or not active' })
  async file(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const ctx = contextOf(req);
    const image = await this.images.getActive(ctx, id);
    const data = await this.images.openData(image);
    setImageHeaders(req, res, this.images.forCaller(ctx, image), false);
    if (image.checksum) res.setHeader('Content-MD5', image.checksum);
    res.setHeader('Content-Disposition', downloadDisposition(image));
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
  @ApiResponse({ status: 413, description: 'Image larger than {{IMAGE_SIZE_CAP}}' })
  async create(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @ImageMetaHeaders(ImageMetaPipe) meta: ImageMeta,
  ) {
    const ctx = contextOf(req);
    const json = await this.sdkJson(req, meta, 'create');
    const image = json
      ? await this.images.create(ctx, json, NO_BODY, copyFromHeader(req))
      : await this.images.create(ctx, meta, requestBody(req), copyFromHeader(req));
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
  @ApiPurgePropsHeader()
  @ApiResponse({ status: 200, description: '{"image": {...}}' })
  @ApiResponse({ status: 403, description: 'Deleted image, or immutable field of an active image' })
  @ApiResponse({ status: 409, description: 'Upload to an image that is not queued' })
  async update(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Param('id') id: string,
    @ImageMetaHeaders(ImageMetaPipe) meta: ImageMeta,
  ) {
    const header = req.headers['x-glance-registry-purge-props'];
    const purge = Array.isArray(header) ? header[0] : header;
    const ctx = contextOf(req);
    const json = await this.sdkJson(req, meta, 'update');
    const image = json
      ? // openstacksdk's update_image merges: properties not sent are kept.
        await this.images.update(ctx, id, json, NO_BODY, purge ?? 'false', copyFromHeader(req))
      : await this.images.update(ctx, id, meta, requestBody(req), purge, copyFromHeader(req));
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

  /** An openstacksdk JSON body (Glance v1 clients never send one), merged over the headers. */
  private async sdkJson(
    req: Request,
    headers: ImageMeta,
    kind: 'create' | 'update',
  ): Promise<ImageMeta | null> {
    if (!isJson(req) || !isOpenStackSdkRequest(req)) return null;
    const body = await readJsonBody(req);
    if (body === undefined) return null;
    const json = imageMetaFromJson(body, new ImageMetaPipe(this.config), kind);
    return { ...headers, ...json, properties: { ...headers.properties, ...json.properties } };
  }

  private listQuery(query: Record<string, unknown>, req: Request) {
    return parseImageListQuery(query, contextOf(req), {
      defaultLimit: this.config.LIMIT_PARAM_DEFAULT,
      maxLimit: this.config.API_LIMIT_MAX,
    });
  }
}

