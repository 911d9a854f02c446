import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * Where optimised models are kept by default: $EGRET_CACHE_DIR, else $XDG_CACHE_HOME/egret, else ~/.cache/egret.
 * A relative XDG_CACHE_HOME is ignored, as the XDG Base Directory Specification says
 * (https://specifications.freedesktop.org/basedir-spec/latest/).
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const own = env['EGRET_CACHE_DIR'];
  if (own) return own;
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg && isAbsolute(xdg)) return join(xdg, 'egret');
  return join(home, '.cache', 'egret');
}
