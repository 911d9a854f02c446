// Sampling (issue #3): transformers' order of temperature, top-k and top-p, checked by what each can draw and
// by frequencies against the softmax, with a seeded generator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, sampleToken, seededRandom } from '../src/generate/sampling.js';

const logits = Float32Array.from([2.0, 1.0, 0.5, 3.0, -1.0, 3.0, 0.0, -2.0]);

function draws(opts: Parameters<typeof sampleToken>[1], n = 20000, seed = 1): number[] {
  const random = seededRandom(seed);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(logits, opts, [], random)]!++;
  return counts;
}

test('temperature 0 is argmax, the first of equal maxima', () => {
  assert.equal(argmax(logits), 3);
  assert.equal(sampleToken(logits, {}, [], seededRandom(0)), 3);
});

test('plain sampling follows the softmax of logits / temperature', () => {
  const t = 0.7;
  const w = Array.from(logits, (x) => Math.exp(x / t));
  const z = w.reduce((a, b) => a + b, 0);
  const counts = draws({ temperature: t });
  counts.forEach((c, i) => assert.ok(Math.abs(c / 20000 - w[i]! / z) < 0.015, `token ${i}: ${c / 20000} vs ${w[i]! / z}`));
});

test('top-k keeps the k largest (ties by lower index), top-p the smallest prefix reaching its mass', () => {
  assert.deepEqual(draws({ temperature: 1, topK: 2 }).map((c) => c > 0), [false, false, false, true, false, true, false, false]);
  assert.deepEqual(draws({ temperature: 1, topK: 3 }).map((c) => c > 0), [true, false, false, true, false, true, false, false]);
  // softmax: tokens 3 and 5 hold 0.376 each, token 0 0.138: top_p 0.5 needs both 3 and 5 (0.752); 0.8 adds token 0.
  assert.deepEqual(draws({ temperature: 1, topP: 0.5 }).map((c) => c > 0), [false, false, false, true, false, true, false, false]);
  assert.deepEqual(draws({ temperature: 1, topP: 0.8 }).map((c) => c > 0), [true, false, false, true, false, true, false, false]);
  assert.deepEqual(draws({ temperature: 1, topK: 4, topP: 0.8 }).map((c) => c > 0), [true, false, false, true, false, true, false, false]);
  // A tiny top_p still keeps one token.
  assert.deepEqual(draws({ temperature: 1, topP: 1e-9 }).map((c) => c > 0), [false, false, false, true, false, false, false, false]);
});

test('the same seed gives the same draws; a repetition penalty lowers seen tokens', () => {
  assert.deepEqual(draws({ temperature: 1, topP: 0.9 }, 200, 5), draws({ temperature: 1, topP: 0.9 }, 200, 5));
  assert.equal(sampleToken(logits, { repetitionPenalty: 2 }, [3], seededRandom(0)), 5);
});
