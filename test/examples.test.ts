// The example images are the lab's samples that examples/README.md names, with the answers it gives: its commands
// regenerate them. Pixels are compared, not bytes, so that another PNG encoder's output still matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { renderSmallPrint } from '../src/lab/smallprint.js';
import { renderScene, scienceQaSample } from '../src/lab/scienceqa.js';
import { decodeImage, loadImage } from '../src/vision/decode.js';
import { ROOT } from './helpers/cli.js';

const DIR = join(ROOT, 'examples');

async function assertSamePixels(file: string, png: Uint8Array): Promise<void> {
  const [shipped, rendered] = [await loadImage(join(DIR, file)), await decodeImage(png)];
  assert.deepEqual([shipped.width, shipped.height], [rendered.width, rendered.height], file);
  assert.ok(Buffer.from(shipped.data).equals(Buffer.from(rendered.data)), `${file} is not the sample examples/README.md names`);
}

test('examples/ are the samples examples/README.md names, with its answers, under 1 MB together', async () => {
  const readme = await readFile(join(DIR, 'README.md'), 'utf8');
  for (const [file, index] of [['ticket.png', 8], ['label.png', 18]] as const) {
    const sample = await renderSmallPrint(12, index);
    await assertSamePixels(file, sample.png);
    assert.ok(readme.includes(`| \`${file}\` | small print, sample ${index} of seed 12`) && readme.includes(`| ${sample.question} | ${sample.code} |`), file);
  }
  const { pid, problem, scene } = scienceQaSample(12, 14);
  assert.equal(pid, '15');
  await assertSamePixels('shapes.png', await renderScene(scene!));
  assert.ok(readme.includes(`| ${problem.question} (A)`) && readme.includes(`| ${'AB'[problem.answer]}, ${problem.choices[problem.answer]} |`));
  let bytes = 0;
  for (const file of ['ticket.png', 'label.png', 'shapes.png']) bytes += (await stat(join(DIR, file))).size;
  assert.ok(bytes < 1_000_000, `${bytes} bytes`);
});
