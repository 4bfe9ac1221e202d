import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ImageCache } from './image-cache.service.js';

/**
 * With the cache off the management routes do not exist (Glance without
 * the cachemanage middleware): 404 before authentication and policy, which
 * glance-cache-manage reports as "Cache management middleware not enabled".
 */
@Injectable()
export class CacheOffMiddleware implements NestMiddleware {
  constructor(private readonly cache: ImageCache) {}

  use(_req: Request, res: Response, next: NextFunction): void {
    if (this.cache.enabled) return next();
    res
      .status(404)
      .type('text/plain; charset=utf-8')
      .send('404 Not Found\n\nThe resource could not be found.\n');
  }
}
