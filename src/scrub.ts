import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { ScrubberService } from './images/scrubber.service.js';

/** `npm run scrub`: one scrubber pass over pending_delete images, then exit. */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn', 'log'] });
  try {
    const count = await app.get(ScrubberService).scrubOnce();
    console.log(`Scrubbed ${count} image(s)`);
  } finally {
    await app.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
