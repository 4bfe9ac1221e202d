/** The part of a Swagger UI request the interceptor reads and rewrites. */
export interface ExplorerRequest {
  url: string;
  headers: Record<string, string | undefined>;
}

/**
 * Swagger UI's requestInterceptor for /api-docs, run in the browser: the
 * page gets its source text (Function.prototype.toString), so it must not
 * refer to anything outside itself. It turns the explorer-only `properties`
 * inputs into Glance's own wire form and leaves everything else alone:
 * - header x-image-meta-properties → one x-image-meta-property-<key> header each;
 * - query properties → one property-<key>=<value> query parameter each;
 * both given as a JSON object or as key=value pairs separated by ";" or new
 * lines. x-image-meta-* values go out as UTF-8 bytes, as glanceclient sends
 * them (a browser would send Latin-1, or refuse other characters). Input it
 * cannot read is left as it is: the service then answers 400 for the header.
 */
export function explorerRequestInterceptor<T extends ExplorerRequest>(
  req: T,
): T {
  const parse = (text: string): [string, string][] | null => {
    const trimmed = text.trim();
    if (trimmed === '') return [];
    if (trimmed.startsWith('{')) {
      try {
        const value: unknown = JSON.parse(trimmed);
        if (value === null || typeof value !== 'object' || Array.isArray(value))
          return null;
        return Object.entries(value as Record<string, unknown>).map(
          ([k, v]) => [k.trim(), typeof v === 'string' ? v : JSON.stringify(v)],
        );
      } catch {
        return null;
      }
    }
    const pairs: [string, string][] = [];
    for (const part of trimmed.split(/[;\n]/)) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      if (eq <= 0) return null;
      pairs.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
    }
    return pairs;
  };
  const validKey = (key: string) => /^[A-Za-z0-9_.:-]+$/.test(key);
  const utf8Bytes = (value: string) =>
    Array.from(new TextEncoder().encode(value), (b) =>
      String.fromCharCode(b),
    ).join('');

  const headerName = Object.keys(req.headers).find(
    (h) => h.toLowerCase() === 'x-image-meta-properties',
  );
  if (headerName !== undefined) {
    const pairs = parse(req.headers[headerName] ?? '');
    if (pairs !== null && pairs.every(([k]) => validKey(k))) {
      delete req.headers[headerName];
      for (const [key, value] of pairs)
        req.headers[`x-image-meta-property-${key}`] = value;
    }
  }
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.toLowerCase().startsWith('x-image-meta-') && value !== undefined) {
      req.headers[name] = utf8Bytes(value);
    }
  }

  const url = new URL(req.url, 'http://explorer.invalid');
  const filter = url.searchParams.get('properties');
  if (filter !== null) {
    const pairs = parse(filter);
    if (pairs !== null && pairs.every(([k]) => k !== '')) {
      url.searchParams.delete('properties');
      for (const [key, value] of pairs)
        url.searchParams.append(`property-${key}`, value);
      const relative = !/^[a-z][a-z0-9+.-]*:/i.test(req.url);
      req.url = relative ? `${url.pathname}${url.search}` : url.toString();
    }
  }
  return req;
}
