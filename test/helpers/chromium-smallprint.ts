// Small-print images drawn by another program than egret's renderer: Chromium's canvas (Skia, FreeType, HarfBuzz),
// from the task's written specification alone (issue #12: 768–1024 px, a code of 4–6 characters of A–Z and 0–9 in
// DejaVu Sans at a cap height of 8–16 px, dark on light, among shapes, lines and short words in the same font,
// slight rotation, noise). Nothing here reads src/lab/: held-out accuracy on these images shows whether a model reads
// the font, not egret's pixels.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from './chromium.js';
import { ROOT } from './cli.js';

export interface ChromiumSample {
  png: Buffer;
  code: string;
  width: number;
  height: number;
  capHeight: number;
}

// Not compiled: tests run from dist/, the page script is read from the checkout.
const PAGE_SCRIPT = join(ROOT, 'test/helpers/chromium-smallprint.page.js');

/** Samples 0 … count − 1 of `seed`, drawn by a headless Chromium (the web UI test's) with assets/fonts/DejaVuSans.ttf. */
export async function chromiumSmallPrint(seed: number, count: number): Promise<ChromiumSample[]> {
  const profile = await mkdtemp(join(tmpdir(), 'egret-chromium-print-'));
  const browser = await launchChromium(profile);
  try {
    const page = await browser.newPage();
    await page.setContent('<canvas id="c"></canvas>');
    await page.addScriptTag({ path: PAGE_SCRIPT });
    const font = (await readFile(join(ROOT, 'assets/fonts/DejaVuSans.ttf'))).toString('base64');
    await page.evaluate(async (b64: string) => {
      await (globalThis as unknown as { loadFont(b64: string): Promise<void> }).loadFont(b64);
    }, font);
    const samples: ChromiumSample[] = [];
    for (let index = 0; index < count; index++) {
      const s = await page.evaluate(([seed, index]) => (globalThis as unknown as { drawSample(seed: number, index: number): Omit<ChromiumSample, 'png'> & { png: string } }).drawSample(seed, index), [seed, index] as const);
      samples.push({ ...s, png: Buffer.from(s.png.slice(s.png.indexOf(',') + 1), 'base64') });
    }
    return samples;
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
}
