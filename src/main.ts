// First: Nest's modules must load while date formatters are deferred.
import { restoreDateTimeFormat } from './boot/defer-date-format.js';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import cluster from 'node:cluster';
import { followPrimary, runPrimary } from './cluster/primary.js';
import { AppModule } from './app.module.js';
import { ConfigError, loadConfig } from './config/app-config.js';
import { configureApp } from './configure-app.js';
import { createAppLogger } from './logging/app-logger.js';

restoreDateTimeFormat();

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  if (config.WORKERS > 1 && cluster.isPrimary) {
    await runPrimary(config);
    return;
  }
  const primary = cluster.isWorker ? followPrimary() : undefined;
  // Image bodies are streams: no body parser may read them.
  const app = await NestFactory.create(AppModule, {
    bodyParser: false,
    logger: createAppLogger(config),
  });
  configureApp(app);
  // Signalled before configureApp installed Nest's shutdown hooks: nobody else will stop it.
  if (primary?.stopRequested()) {
    await app.close();
    process.exit(0);
  }
  await app.listen(config.PORT, config.HOST);
  new Logger('Main').log(
    `Glance v1 API listening on http://${config.HOST}:${config.PORT}`,
  );
}

bootstrap().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
  } else {
    console.error('Failed to start:', err instanceof Error ? err.stack : err);
  }
  process.exit(1);
});
