import type { Request } from 'express';
import { isOpenStackSdkRequest } from './sdk-request.js';

/**
 * The `next` link of a list page, as Glance v2 puts it in the body: present
 * when the page is full (there may be more), with the caller's query and the
 * last id as marker, for openstacksdk, which pages only by such a link. Other
 * clients (glanceclient, Nova, the replicator) page by marker themselves and
 * get Glance v1's body unchanged, without the key.
 */
export function sdkNextLink(
  req: Request,
  page: { id: string }[],
  limit: number,
): string | undefined {
  if (limit <= 0 || page.length < limit || !isOpenStackSdkRequest(req)) return undefined;
  const query = new URLSearchParams(req.url.split('?')[1] ?? '');
  query.set('marker', page[page.length - 1].id);
  // Absolute, as the Location header: openstacksdk 0.101 resolves a relative
  // '/v1/...' link against the list path and asks for /v1/images/images/detail.
  return `${req.protocol}://${req.headers.host ?? 'localhost'}${req.path}?${query.toString()}`;
}
