import { readFileSync, rmSync } from 'node:fs';
import { run } from './children.mjs';

const MAX_SECONDS = 600;

/**
 * Streams `file` as a chunked POST body (curl -T), like a Glance client.
 * `Expect:` is blanked so no server gets a 100-continue round trip the others skip.
 */
export async function curlUpload({ url, file, headers, responseFile }) {
  const args = ['-sS', '--max-time', String(MAX_SECONDS), '-o', responseFile];
  args.push('-w', '%{http_code} %{time_total} %{speed_upload} %{size_upload}');
  args.push('-X', 'POST');
  for (const h of [
    ...headers,
    'Content-Type: application/octet-stream',
    'Transfer-Encoding: chunked',
    'Expect:',
  ]) {
    args.push('-H', h);
  }
  args.push('-T', file, url);
  const r = await run('curl', args, { timeoutMs: (MAX_SECONDS + 30) * 1000 });
  const [status, seconds, speed, bytes] = r.stdout
    .trim()
    .split(' ')
    .map(Number);
  let body = '';
  try {
    body = readFileSync(responseFile, 'utf8');
    rmSync(responseFile);
  } catch {
    // no body written
  }
  return {
    status,
    seconds,
    curlSpeed: speed,
    bytes,
    body,
    curlExit: r.code,
    stderr: r.stderr.trim(),
  };
}

export async function curlDownload({ url }) {
  const args = ['-sS', '--max-time', String(MAX_SECONDS), '-o', '/dev/null'];
  args.push(
    '-w',
    '%{http_code} %{time_total} %{speed_download} %{size_download}',
    url,
  );
  const r = await run('curl', args, { timeoutMs: (MAX_SECONDS + 30) * 1000 });
  const [status, seconds, speed, bytes] = r.stdout
    .trim()
    .split(' ')
    .map(Number);
  return {
    status,
    seconds,
    curlSpeed: speed,
    bytes,
    curlExit: r.code,
    stderr: r.stderr.trim(),
  };
}

export async function curlVersion() {
  try {
    const r = await run('curl', ['--version'], { timeoutMs: 5000 });
    return r.stdout.split('\n')[0];
  } catch {
    return null;
  }
}
