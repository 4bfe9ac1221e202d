import { Injectable } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Counter, Histogram, Registry } from 'prom-client';

const STARTED_AT = Symbol('httpMetrics.startedAt');

type Timed = Request & { [STARTED_AT]: number };

type HttpLabels = 'method' | 'route' | 'status';

/** Image transfers last minutes: buckets go past the library's 10 s. */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/**
 * Request count and duration by method, route pattern and status, recorded
 * by an Express middleware when the response closes. The route is the
 * pattern Express matched (`/v1/images/:id`), never the raw URL, so label
 * cardinality stays bounded; requests no route matched are `unmatched`.
 */
@Injectable()
export class HttpMetrics {
  readonly middleware: RequestHandler;

  constructor(registry: Registry) {
    const requests = new Counter<HttpLabels>({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    const duration = new Histogram<HttpLabels>({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds, until the response is done.',
      labelNames: ['method', 'route', 'status'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });

    // One shared listener (`this` is the response): nothing allocated per request but the labels.
    function onClose(this: Response): void {
      const req = this.req as Timed;
      const labels = {
        method: req.method,
        route: routeOf(req),
        status: this.statusCode,
      };
      requests.inc(labels);
      duration.observe(labels, (performance.now() - req[STARTED_AT]) / 1000);
    }

    this.middleware = (req: Request, res: Response, next: NextFunction) => {
      (req as Timed)[STARTED_AT] = performance.now();
      res.once('close', onClose);
      next();
    };
  }
}

function routeOf(req: Request): string {
  const path: unknown = req.route?.path;
  return typeof path === 'string' ? path : 'unmatched';
}
