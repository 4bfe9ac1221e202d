import { execFileSync } from 'node:child_process';

/**
 * Whether Debian's `glance` (python3-glanceclient) is on the PATH. With
 * REQUIRE_GLANCE_CLIENT=1 (.ci/run) its absence is an error, not a skip.
 */
export function glanceCliAvailable(): boolean {
  let found = true;
  try {
    execFileSync('sh', ['-c', 'command -v glance'], { stdio: 'ignore' });
  } catch {
    found = false;
  }
  if (!found && process.env.REQUIRE_GLANCE_CLIENT === '1') {
    throw new Error(
      'REQUIRE_GLANCE_CLIENT=1 but `glance` is not installed: apt-get install python3-glanceclient',
    );
  }
  return found;
}
