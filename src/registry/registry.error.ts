export enum RegistryErrorCode {
  NotFound = 'NOT_FOUND',
  Duplicate = 'DUPLICATE',
  /** A from_state guarded update found the image in another state. */
  Conflict = 'CONFLICT',
  InvalidMarker = 'INVALID_MARKER',
  /** The owner already owns `ownedLimit` images (the message is their count). */
  QuotaExceeded = 'QUOTA_EXCEEDED',
}

export class RegistryError extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}
