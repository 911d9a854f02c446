// stats.flops of a whole request against a count written out here from the layer formulas (2 FLOPs per
// multiply-add): the vision tower and projector of each image, FastV's ranking pass, every decoder layer as it ran,
// and the LM head of each call. The tower formulas themselves are checked against published figures in
// vision-flops.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { egretSync } from './helpers/cli.js';

const DIR = 'test/fixtures/tiny-llava15';
const IMAGE = 'test/fixtures/images/rgba.png';

// tiny-llava15 (its README): CLIP 56 px / 14 → 16 patches + CLS, width 48, MLP 96, vision_feature_layer -2 of 4
// layers → 3 layers run; projector 48 → 64 → 64; LLaMA hidden 64 (4 heads of 16), MLP 172, 4 layers, vocab 401.
const VISION = 2 * 16 * 48 * (3 * 14 * 14) // patch convolution
  + 3 * (2 * 17 * (4 * 48 * 48 + 2 * 48 * 96) + 2 * 2 * 17 * 17 * 48) // q, k, v, out, fc1, fc2; scores and weighted sums
  + 2 * 16 * (48 * 64 + 64 * 64); // projector over the 16 patch tokens (the CLS row is dropped)
const LM_HEAD = 2 * 64 * 401;

/** One decoder call: layer i computes n[i] new tokens over a context of c[i] (cached + new) tokens, then the LM head. */
function call(n: readonly number[], c: readonly number[]): number {
  let flops = 0;
  for (let i = 0; i < 4; i++) {
    flops += 2 * n[i]! * (4 * 64 * 64 + 3 * 64 * 172);
    for (let s = 0; s < n[i]!; s++) flops += 2 * 2 * 64 * (c[i]! - n[i]! + s + 1); // query s sees the past and itself
  }
  return flops + LM_HEAD;
}

/** A request: prefill with `layers[i]` tokens in layer i, then `newTokens` − 1 decode calls of one token. */
function request(layers: readonly number[], newTokens: number): number {
  let flops = call(layers, layers);
  for (let t = 1; t < newTokens; t++) flops += call([1, 1, 1, 1], layers.map((n) => n + t));
  return flops;
}

function statsFlops(...extra: string[]): number {
  // BOS, the image (16 visual tokens), three text tokens: 20 tokens.
  const r = egretSync('generate', '--model', DIR, '--image', IMAGE, '--ids', '1,-200,5,6,7', '--max-new-tokens', '3', '--ignore-eos', '--json', ...extra);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).stats.flops;
}

test('stats.flops: the vision tower and projector, every layer as it ran, the LM head of each call', () => {
  assert.equal(statsFlops('--vtw-layer', 'off'), VISION + request([20, 20, 20, 20], 3));
});

test('stats.flops with VTW: layers from K on compute the 4 text tokens only', () => {
  assert.equal(statsFlops('--vtw-layer', '2'), VISION + request([20, 20, 4, 4], 3));
});

test("stats.flops with FastV: the ranking pass, then layers from K on keep half the visual tokens", () => {
  // Ranking pass: layers 0..K-1 over the whole prompt, layers from K on over the last token alone, and its LM head.
  const ranking = call([20, 20, 1, 1], [20, 20, 1, 1]);
  assert.equal(statsFlops('--fastv', '2:0.5'), VISION + ranking + request([20, 20, 12, 12], 3));
});
