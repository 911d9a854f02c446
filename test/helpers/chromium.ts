// A headless Chromium from the npm registry (@sparticuz/chromium, unpacked into the temporary folder on first use)
// driven by playwright-core: no system package is needed.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import serverlessChromium, { inflate } from '@sparticuz/chromium';
import { chromium, type BrowserContext } from 'playwright-core';

/** A persistent context on the (fresh) profile folder `profile`: playwright passes it as --user-data-dir. */
export async function launchChromium(profile: string, viewport?: { width: number; height: number }): Promise<BrowserContext> {
  // The package's own copies of the few shared libraries Chromium needs beyond glibc (NSS, NSPR, expat; packed for
  // Amazon Linux).
  const libraries = join(await inflate(join(dirname(fileURLToPath(import.meta.resolve('@sparticuz/chromium'))), '..', 'bin', 'al2023.tar.br')), 'lib');
  return chromium.launchPersistentContext(profile, {
    executablePath: await serverlessChromium.executablePath(),
    headless: true,
    ...(viewport ? { viewport } : {}),
    args: serverlessChromium.args,
    env: { ...process.env, LD_LIBRARY_PATH: [libraries, process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':') },
  });
}
