/**
 * Environment for Debian's Python clients (glance, openstack, the SDK): no
 * proxies for loopback, no OS_* settings of the caller's shell, and no
 * PYTHONPATH of another Python (pyenv's is first on this machine's PATH).
 */
export function clientEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '*', no_proxy: '*' };
  for (const key of Object.keys(env)) if (key.startsWith('OS_')) delete env[key];
  delete env.PYTHONPATH;
  return env;
}
