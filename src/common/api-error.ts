/** Outcomes the API reports to clients; the global filter maps each to Glance's status code. */
export enum ApiErrorCode {
  BadRequest = 400,
  Unauthorized = 401,
  Forbidden = 403,
  NotFound = 404,
  Conflict = 409,
  PreconditionFailed = 412,
  PayloadTooLarge = 413,
  TooManyRequests = 429,
  Internal = 500,
  ServiceUnavailable = 503,
}

/** A domain error with a message meant for the client. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  static badRequest(message: string): ApiError {
    return new ApiError(ApiErrorCode.BadRequest, message);
  }
  static forbidden(message = 'Access was denied to this resource.'): ApiError {
    return new ApiError(ApiErrorCode.Forbidden, message);
  }
  static notFound(message: string): ApiError {
    return new ApiError(ApiErrorCode.NotFound, message);
  }
  static conflict(message: string): ApiError {
    return new ApiError(ApiErrorCode.Conflict, message);
  }
}
