import { Injectable } from '@nestjs/common';
import { broadcastToWorkers, onBroadcast } from '../../cluster/cluster-ipc.js';
import { processRole } from '../../cluster/process-role.js';

const ABORT_BROADCAST = 'upload.abort';

/**
 * Uploads in flight in this process, so a delete (or shutdown) can stop them.
 * With WORKERS > 1 an abort for an upload another worker runs is passed to
 * every worker through the primary.
 */
@Injectable()
export class UploadTracker {
  private readonly inFlight = new Map<string, AbortController>();

  constructor() {
    if (processRole() === 'worker') {
      onBroadcast(ABORT_BROADCAST, (payload) => {
        const { imageId, reason } = payload as {
          imageId: string;
          reason: string;
        };
        this.abortHere(imageId, reason);
      });
    }
  }

  begin(imageId: string): AbortSignal {
    const controller = new AbortController();
    this.inFlight.set(imageId, controller);
    return controller.signal;
  }

  end(imageId: string): void {
    this.inFlight.delete(imageId);
  }

  /**
   * Stops the upload of `imageId`: true when this process ran it; otherwise
   * (several workers) the other workers are told to stop it.
   */
  abort(imageId: string, reason: string): boolean {
    if (this.abortHere(imageId, reason)) return true;
    if (processRole() === 'worker')
      broadcastToWorkers(ABORT_BROADCAST, { imageId, reason });
    return false;
  }

  get active(): string[] {
    return [...this.inFlight.keys()];
  }

  private abortHere(imageId: string, reason: string): boolean {
    const controller = this.inFlight.get(imageId);
    if (!controller) return false;
    controller.abort(new Error(reason));
    return true;
  }
}
