// The vision towers' FLOPs counts (src/models/flops.ts) against published figures: the bench's GFLOP/s rest on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONVNEXT_LARGE } from '../src/models/convnext.js';
import { convnextFlops, llavaVisionFlops, vitFlops } from '../src/models/flops.js';
import { readJson } from '../src/models/llama/config.js';
import { llavaConfigFromHf } from '../src/models/llava.js';

const near = (actual: number, expected: number, rel: number) =>
  assert.ok(Math.abs(actual / expected - 1) <= rel, `${actual} is not within ${rel * 100} % of ${expected}`);

// open_clip's docs/model_profile.csv lists image_gflops at 2 FLOPs per multiply-add (its ViT-L-14 at 224 px:
// 162.03, twice the 81 GMACs of 24 layers over 257 tokens): the same convention as src/models/flops.ts.
test('ConvNeXt-L at 224 px: 34.4 GMACs, as timm lists convnext_large (open_clip: 68.72 image GFLOPs)', () => {
  near(convnextFlops(CONVNEXT_LARGE, 224) / 2, 34.4e9, 0.01);
  near(convnextFlops(CONVNEXT_LARGE, 224), 68.72e9, 0.01);
});

test('CLIP ViT-L/14 at 336 px: 381.92 image GFLOPs (191 GMACs), as open_clip profiles ViT-L-14-336', () => {
  const vit = { hidden: 1024, layers: 24, heads: 16, patchSize: 14, imageSize: 336, layerNormEps: 1e-5, activation: 'quick_gelu' as const };
  near(vitFlops(vit, 4096, 576, 577, 24), 381.92e9, 0.01);
  // And at 224 px (ViT-L-14): 162.03.
  near(vitFlops({ ...vit, imageSize: 224 }, 4096, 256, 257, 24), 162.03e9, 0.01);
});

test('LLaVA-1.5 counts the CLIP layers up to vision_feature_layer and the projector over the patch tokens', async () => {
  const config = llavaConfigFromHf(await readJson('test/fixtures/tiny-llava15/config.json'), 'tiny-llava15');
  // 56 px / 14 = 4×4 patches + CLS; width 48, MLP 96, feature layer -2 of 4 → 3 layers; projector 48 → 64 → 64.
  const expected = vitFlops(config.vision, 96, 16, 17, 3) + 2 * 16 * (48 * 64 + 64 * 64);
  assert.equal(llavaVisionFlops(config, 96), expected);
});
