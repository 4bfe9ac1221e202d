import { Injectable } from '@nestjs/common';

/** Uploads in flight on this node, so a delete (or shutdown) can stop them. */
@Injectable()
export class UploadTracker {
  private readonly inFlight = new Map<string, AbortController>();

  begin(imageId: string): AbortSignal {
    const controller = new AbortController();
    this.inFlight.set(imageId, controller);
    return controller.signal;
  }

  end(imageId: string): void {
    this.inFlight.delete(imageId);
  }

  /** Stops the upload of `imageId` if this node runs it; true when one was stopped. */
  abort(imageId: string, reason: string): boolean {
    const controller = this.inFlight.get(imageId);
    if (!controller) return false;
    controller.abort(new Error(reason));
    return true;
  }

  get active(): string[] {
    return [...this.inFlight.keys()];
  }
}
