import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

/** Image bytes in and out; the uploader and downloader report each transfer once. */
@Injectable()
export class TransferMetrics {
  private readonly uploaded: Counter;
  private readonly downloaded: Counter;

  constructor(registry: Registry) {
    this.uploaded = new Counter({
      name: 'glance_image_bytes_uploaded_total',
      help: 'Image bytes stored by successful uploads (request bodies and copy-from).',
      registers: [registry],
    });
    this.downloaded = new Counter({
      name: 'glance_image_bytes_downloaded_total',
      help: 'Image bytes sent to clients, including downloads cut short.',
      registers: [registry],
    });
  }

  addUploaded(bytes: number): void {
    if (bytes > 0) this.uploaded.inc(bytes);
  }

  addDownloaded(bytes: number): void {
    if (bytes > 0) this.downloaded.inc(bytes);
  }
}
