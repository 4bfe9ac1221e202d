import type { INestApplication } from '@nestjs/common';
import type { Server } from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ApiExceptionFilter } from './common/api-exception.filter.js';
import { LocationRedactionInterceptor } from './common/location-redaction.interceptor.js';
import { versionNegotiation } from './common/version-negotiation.middleware.js';
import { AppConfig } from './config/app-config.js';
import { setupExplorer } from './explorer/explorer.setup.js';
import { accessLogMiddleware } from './logging/access-log.middleware.js';
import { isLogLevelEnabled } from './logging/app-logger.js';
import { requestIdMiddleware } from './logging/request-id.middleware.js';
import { HttpMetrics } from './metrics/http.metrics.js';

/**
 * Everything global about the HTTP app, shared by main.ts and the tests so
 * that tests run the real thing.
 */
export function configureApp(app: INestApplication): INestApplication {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.disable('etag');
  express.set('trust proxy', false);
  express.set('query parser', 'simple');
  const config = app.get(AppConfig);
  // Node cuts any request still arriving after 5 minutes (requestTimeout): a
  // multi-GiB upload is a long request. Silent connections are cut instead.
  const server = app.getHttpServer() as Server;
  server.requestTimeout = 0;
  server.timeout = config.CLIENT_SOCKET_TIMEOUT * 1000;
  express.use(requestIdMiddleware);
  // Access lines are info ('log') lines: below that level they would be built for nothing.
  if (config.ACCESS_LOG && isLogLevelEnabled(config.LOG_LEVEL, 'log')) {
    express.use(accessLogMiddleware(config.LOG_FORMAT));
  }
  express.use(app.get(HttpMetrics).middleware);
  express.use(versionNegotiation);
  app.useGlobalFilters(new ApiExceptionFilter());
  app.useGlobalInterceptors(new LocationRedactionInterceptor());
  // After a graceful shutdown exit 0 (process.exit also flushes async log destinations).
  app.enableShutdownHooks([], { useProcessExit: true });

  setupExplorer(app, config);
  return app;
}
