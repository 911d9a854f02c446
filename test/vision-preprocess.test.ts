/**
 * Model preprocessing pipelines against test/fixtures/images/expected.safetensors (recorded with Pillow 9.4 and
 * transformers / torchvision, see its README): every key, u8 exactly, float32 within 1e-6.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openCheckpointFile, type TensorSource } from '../src/io/checkpoint.js';
import { loadImage } from '../src/vision/decode.js';
import type { RGBImage } from '../src/vision/image.js';
import { assertBytesEqual } from './helpers/vision.js';
import { clipImageProcessor, preprocessLavin, preprocessLlavaHr, preprocessLlavaPad, type Preprocessed } from '../src/vision/pipelines.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/images/', import.meta.url));
const FILES: Record<string, string> = { wide: 'wide_rgb.png', tall: 'tall.jpg', rgba: 'rgba.png', gray: 'gray.png', large: 'large_text.png' };
const PIPELINES: Record<string, (img: RGBImage) => Preprocessed> = {
  llava15_pad: (img) => preprocessLlavaPad(img, 56),
  llava15_nopad: (img) => clipImageProcessor(img, 56),
  llava_hr: (img) => preprocessLlavaHr(img, 128),
  lavin: (img) => preprocessLavin(img, 224),
};

/** `pixel_values[:, ::step, ::step]` of a CHW tensor. */
function subsample(chw: Float32Array, height: number, width: number, step: number): Float32Array {
  const out: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y += step) for (let x = 0; x < width; x += step) out.push(chw[(c * height + y) * width + x]!);
  }
  return Float32Array.from(out);
}

async function withExpected(run: (ref: TensorSource, images: Record<string, RGBImage>) => Promise<void>): Promise<void> {
  const ref = await openCheckpointFile(DIR + 'expected.safetensors');
  try {
    const images: Record<string, RGBImage> = {};
    for (const [key, file] of Object.entries(FILES)) images[key] = await loadImage(DIR + file);
    await run(ref, images);
  } finally {
    await ref.close();
  }
}

test('tall.jpg decodes exactly as Pillow 9.4 (libjpeg-turbo, ISLOW, fancy upsampling)', () =>
  withExpected(async (ref, images) => {
    assert.deepEqual(ref.info('decoded.tall').shape, [images.tall!.height, images.tall!.width, 3]);
    assertBytesEqual(images.tall!.data, await ref.read('decoded.tall'), 'decoded.tall');
  }));

test('every recorded pipeline output matches: u8 exactly, pixel values within 1e-6', () =>
  withExpected(async (ref, images) => {
    const keys = ref.list().map((t) => t.name).filter((name) => !name.startsWith('decoded.'));
    assert.equal(keys.length, 28);
    for (const key of keys) {
      const [pipeline, image, what] = key.split('.') as [string, string, string];
      const out = PIPELINES[pipeline]!(images[image]!);
      const { width, height } = out.image;
      if (what === 'u8') {
        assert.deepEqual(ref.info(key).shape, [height, width, 3], key);
        assertBytesEqual(out.image.data, await ref.read(key), key);
        continue;
      }
      const step = what === 'pixel_values' ? 1 : Number(/^pixel_values_s(\d+)$/.exec(what)![1]);
      const expected = await ref.readFloat32(key);
      const actual = subsample(out.pixelValues, height, width, step);
      assert.equal(actual.length, expected.length, key);
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
      assert.ok(maxDiff <= 1e-6, `${key}: max |diff| ${maxDiff}`);
    }
  }));
