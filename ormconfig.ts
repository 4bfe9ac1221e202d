import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from './src/config/app-config.js';
import { buildDataSourceOptions } from './src/registry/data-source-options.js';

/** DataSource for the TypeORM CLI (migration:run, migration:generate). */
export default new DataSource(
  buildDataSourceOptions(loadConfig().DATABASE_URL),
);
