import type { IncomingHttpHeaders } from 'node:http';

/** openstacksdk (and the openstack CLI built on it) names itself first or after an app name. */
const SDK_USER_AGENT = /(^|\s)openstacksdk\/\d/i;

/**
 * The one heuristic that tells an openstacksdk request apart: its User-Agent.
 *
 * openstacksdk's image v1 proxy speaks JSON where Glance v1 speaks
 * x-image-meta-* headers (it reads `GET /v1/images/{id}` as JSON metadata,
 * sends JSON create/update bodies and uploads without a Content-Type), and
 * its requests carry nothing else that differs (no Accept on that GET).
 * Only requests matching this get the JSON dialect; glanceclient, Nova, curl
 * and every other client get Glance v1's wire protocol unchanged.
 */
export function isOpenStackSdkRequest(req: {
  headers: IncomingHttpHeaders;
}): boolean {
  const agent = req.headers['user-agent'];
  return typeof agent === 'string' && SDK_USER_AGENT.test(agent);
}
