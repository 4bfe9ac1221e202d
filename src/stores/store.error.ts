export enum StoreErrorCode {
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
  StorageFull = 'STORAGE_FULL',
  WriteDenied = 'WRITE_DENIED',
  BadLocation = 'BAD_LOCATION',
  UnknownScheme = 'UNKNOWN_SCHEME',
  ReadOnly = 'READ_ONLY',
  Duplicate = 'DUPLICATE',
  Forbidden = 'FORBIDDEN',
}

/** Error raised by any store backend; the global filter maps the code to an HTTP status. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}
