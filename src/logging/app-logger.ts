import type { LoggerService, LogLevel } from '@nestjs/common';
import { pino } from 'pino';
import type { AppConfig } from '../config/app-config.js';
import { PinoLogger } from './pino.logger.js';
import { RequestAwareConsoleLogger } from './request-aware-console.logger.js';

const NEST_LEVELS: LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'log',
  'debug',
  'verbose',
];

/** Whether LOG_LEVEL lets lines of `level` through. */
export function isLogLevelEnabled(configured: string, level: LogLevel): boolean {
  return NEST_LEVELS.indexOf(level) <= NEST_LEVELS.indexOf(configured as LogLevel);
}

/** The process-wide logger chosen by LOG_FORMAT and LOG_LEVEL. */
export function createAppLogger(
  config: Pick<AppConfig, 'LOG_FORMAT' | 'LOG_LEVEL'>,
): LoggerService {
  const silent = config.LOG_LEVEL === 'silent';
  const level = (silent ? 'fatal' : config.LOG_LEVEL) as LogLevel;
  if (config.LOG_FORMAT === 'text') {
    const logLevels = silent ? [] : NEST_LEVELS.slice(0, NEST_LEVELS.indexOf(level) + 1);
    return new RequestAwareConsoleLogger({ logLevels });
  }
  // Asynchronous stdout: lines written while a write is in flight go out
  // together in the next one (batching under load, immediate when idle);
  // pino flushes it on exit.
  const logger = new PinoLogger({
    level,
    destination: pino.destination({ dest: 1, sync: false }),
  });
  if (silent) logger.setLogLevels([]);
  return logger;
}
