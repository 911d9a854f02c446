/**
 * Decoding and resampling against test/fixtures/vision/expected.safetensors, recorded with Pillow 9.4 by
 * test/fixtures/vision/generate.py (see its README): `Image.open(f).convert('RGB')` and `Image.resize`, exactly.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openCheckpointFile } from '../src/io/checkpoint.js';
import { decodeImage, loadImage } from '../src/vision/decode.js';
import { resizePillow, type ResampleFilter } from '../src/vision/resample.js';
import { assertBytesEqual } from './helpers/vision.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/vision/', import.meta.url));
const ref = await openCheckpointFile(DIR + 'expected.safetensors');
const keys = ref.list().map((t) => t.name);
test.after(() => ref.close());

for (const file of keys.filter((k) => !k.startsWith('resize.'))) {
  test(`${file} decodes as Pillow's convert('RGB')`, async () => {
    const img = await decodeImage(await readFile(DIR + file), { name: file });
    assert.deepEqual(ref.info(file).shape, [img.height, img.width, 3]);
    assertBytesEqual(img.data, await ref.read(file), file);
  });
}

test('Pillow BILINEAR and BICUBIC resizes match exactly, both directions, one axis at a time, down to 1x1', async () => {
  const source = await loadImage(fileURLToPath(new URL('../../test/fixtures/images/wide_rgb.png', import.meta.url)));
  const resizes = keys.filter((k) => k.startsWith('resize.'));
  assert.equal(resizes.length, 10);
  for (const key of resizes) {
    const [, filter, size] = key.split('.') as [string, ResampleFilter, string];
    const [width, height] = size.split('x').map(Number) as [number, number];
    const out = resizePillow(source, width, height, filter);
    assertBytesEqual(out.data, await ref.read(key), key);
  }
});

test('resizing to the same size copies', async () => {
  const img = await loadImage(DIR + 'la.png');
  const out = resizePillow(img, img.width, img.height, 'bicubic');
  assert.notEqual(out.data, img.data);
  assert.deepEqual(out, img);
});
