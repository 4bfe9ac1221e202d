import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Registry } from 'prom-client';
import { askPrimary } from '../cluster/cluster-ipc.js';
import { METRICS_REQUEST } from '../cluster/primary-requests.js';
import { processRole } from '../cluster/process-role.js';

/** Prometheus scrape endpoint; outside the versioned API and without auth, like /healthcheck. */
@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly registry: Registry) {}

  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiResponse({ status: 200, description: 'text/plain; version=0.0.4' })
  async scrape(@Res() res: Response): Promise<void> {
    let body: string;
    if (processRole() === 'worker') {
      // Several workers: the primary answers for the whole node. A worker that is
      // still starting cannot answer yet: 503, and the next scrape gets it all.
      try {
        body = await askPrimary<string>(METRICS_REQUEST, null, 10_000);
      } catch (err) {
        res
          .status(503)
          .type('text/plain')
          .send(`Node metrics unavailable: ${(err as Error).message}`);
        return;
      }
    } else {
      body = await this.registry.metrics();
    }
    res.status(200).setHeader('Content-Type', this.registry.contentType);
    res.send(body);
  }
}
