import {
  Controller,
  Get,
  Head,
  Logger,
  Res,
  ServiceUnavailableException,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import {
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthCheckResult,
} from '@nestjs/terminus';
import type { Response } from 'express';
import { ImageCache } from '../cache/image-cache.service.js';
import { StoreRegistry } from '../stores/store.registry.js';

/** How long each probe may take before it counts as down. */
const PROBE_TIMEOUT_MS = 3000;

/**
 * oslo.middleware's healthcheck: 200 `OK` when the database and the default
 * store answer, 503 with one `<check>: <reason>` line per failed probe
 * otherwise. Plain text, no auth (load balancers poll it).
 */
@ApiTags('operations')
@Controller('healthcheck')
export class HealthController {
  private readonly logger = new Logger('Healthcheck');

  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly stores: StoreRegistry,
    private readonly cache: ImageCache,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Health of the database and the default store' })
  @ApiResponse({ status: 200, description: 'OK' })
  @ApiResponse({ status: 503, description: 'One line per failed check' })
  async get(@Res() res: Response): Promise<void> {
    await this.answer(res);
  }

  @Head()
  @ApiOperation({ summary: 'Health as a status code only' })
  async head(@Res() res: Response): Promise<void> {
    await this.answer(res);
  }

  private async answer(res: Response): Promise<void> {
    const reasons = await this.failures();
    res.type('text/plain; charset=utf-8');
    if (reasons.length === 0) {
      // An unwritable image cache only costs speed (downloads go to the store):
      // degraded, not down, so load balancers keep the node (terminus has no
      // "degraded" state, hence outside its check).
      const degraded = await this.degraded();
      if (degraded.length > 0) {
        this.logger.warn(`Degraded: ${degraded.join('; ')}`);
        res.setHeader('X-Health-Degraded', 'image_cache');
        res.status(200).send(['OK', ...degraded].join('\n'));
        return;
      }
      res.status(200).send('OK');
      return;
    }
    const body = reasons.join('\n');
    this.logger.warn(`Unhealthy: ${reasons.join('; ')}`);
    res.status(503).send(body);
  }

  private async degraded(): Promise<string[]> {
    if (!this.cache.enabled) return [];
    const writable = await this.cache.checkWritable();
    return writable
      ? []
      : [
          `image_cache: degraded (${this.cache.health.reason}): downloads are served from the store`,
        ];
  }

  /** `<check>: <reason>` for every probe that failed; empty when healthy. */
  private async failures(): Promise<string[]> {
    let result: HealthCheckResult;
    try {
      result = await this.health.check([
        () => this.database.pingCheck('database').withTimeout(PROBE_TIMEOUT_MS),
        () =>
          this.indicators
            .check('store')
            .attempt(() => this.stores.default.check())
            .withTimeout(PROBE_TIMEOUT_MS),
      ]);
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      result = err.getResponse() as HealthCheckResult;
    }
    if (result.status === 'shutting_down') return ['shutting down'];
    return Object.entries(result.details)
      .filter(([, detail]) => detail.status === 'down')
      .map(([key, detail]) => `${key}: ${String(detail.message ?? 'down')}`);
  }
}
