import { Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../../common/request-context.js';
import { TransferMetrics } from '../../metrics/transfer.metrics.js';
import { IMAGE_EVENTS, type ImageSendPayload } from '../../notifications/image-notification.js';
import { NotifierService } from '../../notifications/notifier.service.js';
import type { ImageRecord } from '../../registry/image-record.js';
import { ImageSizeMismatchError } from '../../stores/file-image.reader.js';
import type { ImageReader } from '../../stores/image-store.interface.js';
import { SizeCheckedStream } from './size-checked.stream.js';

/** What a download sends: a store's fast-path reader, a stream, or nothing (size 0). */
export interface ImageData {
  size: number;
  reader: ImageReader | null;
  stream: Readable | null;
}

/**
 * Streams an image's bytes to the client with Content-Length, checks the
 * count against the recorded size, and reports image.send once the
 * transfer ended (info when complete, error when short).
 */
@Injectable()
export class ImageDownloader {
  private readonly logger = new Logger('Download');

  constructor(
    private readonly notifier: NotifierService,
    private readonly transfers: TransferMetrics,
  ) {}

  async send(
    ctx: RequestContext,
    req: Request,
    res: Response,
    image: ImageRecord,
    data: ImageData,
  ): Promise<void> {
    res.status(200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(data.size));
    const checker = new SizeCheckedStream(data.size);
    let sent = 0;
    try {
      if (data.reader) {
        sent = await data.reader.pipeTo(res, data.size);
        res.end();
      } else if (data.stream) {
        await pipeline(data.stream, checker, res);
        sent = checker.bytesSent;
      } else {
        res.end();
      }
    } catch (err) {
      sent = data.reader ? sent : checker.bytesSent;
      if (err instanceof ImageSizeMismatchError) {
        this.logger.error(
          `Backend storage for image ${image.id} delivered a wrong size: ${err.message}; download aborted`,
        );
      } else if (!res.writableEnded && req.destroyed) {
        // The client went away: nothing to report but the short image.send.
      } else {
        this.logger.error(`An error occurred reading from backend storage for image ${image.id}: ${(err as Error).message}`);
      }
      res.destroy();
    } finally {
      this.transfers.addDownloaded(sent);
      const payload: ImageSendPayload = {
        bytes_sent: sent,
        image_id: image.id,
        owner_id: image.owner,
        receiver_tenant_id: ctx.tenant,
        receiver_user_id: ctx.user,
        destination_ip: req.socket?.remoteAddress ?? req.ip ?? null,
      };
      if (sent === data.size) this.notifier.info(IMAGE_EVENTS.send, payload);
      else this.notifier.error(IMAGE_EVENTS.send, payload);
    }
  }
}
