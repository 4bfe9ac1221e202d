import { ConsoleLogger } from '@nestjs/common';
import { currentRequestId } from './request-id.js';

/** Nest's human-readable console logger (LOG_FORMAT=text), with the request id after the context. */
export class RequestAwareConsoleLogger extends ConsoleLogger {
  protected override formatContext(context: string): string {
    const id = currentRequestId();
    const base = super.formatContext(context);
    return id === undefined ? base : `${base}[${id}] `;
  }
}
