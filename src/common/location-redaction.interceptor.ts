import {
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import type { Response } from 'express';
import { map, type Observable } from 'rxjs';
import {
  isLocationFreeImageList,
  redactLocations,
} from './redact-locations.js';

/**
 * Image locations can hold store credentials: strip `location`,
 * `location_data` and `locations` from every response body and refuse to
 * send an x-image-meta-location header, whatever a handler returns.
 */
@Injectable()
export class LocationRedactionInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const res = context.switchToHttp().getResponse<Response>();
    res.removeHeader('x-image-meta-location');
    return next.handle().pipe(
      map((body) => {
        if (!res.headersSent) res.removeHeader('x-image-meta-location');
        // List bodies built without locations need only a check of each entry's keys.
        return isLocationFreeImageList(body) ? body : redactLocations(body);
      }),
    );
  }
}
