// The KV cache's growth, counted: a decode step writes only its new keys in place; the whole cache is copied once
// per 256 tokens, so copies grow with the length divided by 256, not with the number of steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KVCache } from '../src/runtime/kv-cache.js';

test('600 one-token steps copy the cache 3 times (capacity 256, 512, 768), every other step writes in place', () => {
  const [kvHeads, headDim] = [2, 4];
  const cache = new KVCache(1, kvHeads, headDim, [0, 0]);
  let copies = 0;
  let buffer = cache.past(0).k;
  for (let step = 0; step < 600; step++) {
    cache.reserve(0, 1);
    if (cache.past(0).k !== buffer) {
      copies++;
      buffer = cache.past(0).k;
    }
    const token = new Float32Array(kvHeads * headDim).fill(step);
    for (const layer of [0, 1]) cache.write(layer, token, token, 1, [1]);
    cache.advance(0, [1]);
  }
  assert.equal(copies, 3);
  assert.equal(cache.capacityOf(0), 768);
  // Nothing was lost across the copies: head 1 of token t holds t.
  const { k, capacity } = cache.past(1);
  for (const t of [0, 255, 256, 599]) assert.equal(k[(1 * capacity + t) * headDim], t);
});
