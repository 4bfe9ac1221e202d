import type { Request } from 'express';
import { ApiError, ApiErrorCode } from './api-error.js';

/** JSON bodies here (member lists, image metadata) are small: anything larger is refused unread. */
const MAX_JSON_BODY_BYTES = 64 * 1024;

/**
 * The request's JSON body, or undefined when it has none (Glance's
 * JSONRequestDeserializer: a body is announced by Transfer-Encoding or a
 * positive Content-Length; Content-Type is not looked at).
 */
export async function readJsonBody(
  req: Request,
  limit = MAX_JSON_BODY_BYTES,
): Promise<unknown> {
  const length = req.headers['content-length'];
  const declared =
    length !== undefined && /^\d+$/.test(length) ? Number(length) : 0;
  if (req.headers['transfer-encoding'] === undefined && declared === 0)
    return undefined;
  if (declared > limit) throw bodyTooLarge(limit);
  const text = (await readAtMost(req, limit)).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw ApiError.badRequest('Malformed JSON in request body.');
  }
}

function bodyTooLarge(limit: number): ApiError {
  return new ApiError(
    ApiErrorCode.PayloadTooLarge,
    `Request body is larger than ${limit} bytes.`,
  );
}

/** Reads the stream to its end; stops reading (and rejects) past `limit` bytes. */
function readAtMost(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (finish: () => void) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      finish();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done(() => reject(bodyTooLarge(limit)));
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => done(() => resolve(Buffer.concat(chunks)));
    const onError = (err: Error) => done(() => reject(err));
    const onClose = () =>
      done(() =>
        reject(ApiError.badRequest('Request body was not received whole.')),
      );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
