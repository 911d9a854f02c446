// Continuous batching (src/generate/batcher.ts) on tiny-llava15: sequences that join a running batch, leave it,
// withdraw visual tokens at their own layers, sample with their own settings, stop at their own strings and are
// cancelled on their own all produce what they produce alone, while sharing decode calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { loadModel, type ChatModel } from '../src/models/index.js';
import type { PreparedPrompt } from '../src/models/prompt.js';
import { Batcher, type SubmitOptions } from '../src/generate/batcher.js';
import type { GenerationResult, GenerationTarget } from '../src/generate/generate.js';
import { withdrawVisualTokens } from '../src/methods/vtw.js';
import { KVCache } from '../src/runtime/kv-cache.js';
import { loadImage } from '../src/vision/decode.js';

const DIR = 'test/fixtures/tiny-llava15';
const IMAGES = ['test/fixtures/images/wide_rgb.png', 'test/fixtures/images/rgba.png'];

/** The fixture's LLaVA prompt ids of sample i and its reference greedy run with VTW before layer k. */
async function reference(i: number, k: number): Promise<{ ids: number[]; greedy: number[] }> {
  const src = await openCheckpoint(`${DIR}/expected/sample${i}.safetensors`);
  const ints = async (name: string) => Array.from(new BigInt64Array((await src.read(name)).slice().buffer), Number);
  const r = { ids: await ints('input_ids_llava'), greedy: await ints(`vtw.K${k}.greedy_ids`) };
  await src.close();
  return r;
}

async function imagePrompt(model: ChatModel, i: number, k: number): Promise<{ prompt: PreparedPrompt; greedy: number[] }> {
  const ref = await reference(i, k);
  const base = await model.prepare(ref.ids, [await loadImage(IMAGES[i]!)]);
  return { prompt: withdrawVisualTokens(base, k, model.decoder.config.layers), greedy: ref.greedy };
}

const textPrompt = (model: ChatModel, text: string) => model.prepare(model.tokenizer.encode(text), []);

/** A generation target that calls `onStep(n)` at the start of every decoder call (n counts them from 1). */
function observed(model: ChatModel, onStep: (n: number) => void): GenerationTarget {
  let calls = 0;
  return { decoder: model.decoder, tokenizer: model.tokenizer, embed: (ids) => (onStep(++calls), model.embed(ids)) };
}

/** The sequence generated alone, in a batcher of its own. */
async function alone(model: ChatModel, prompt: PreparedPrompt, opts: SubmitOptions): Promise<GenerationResult> {
  return new Batcher(model).submit(prompt, opts);
}

async function withModel(fn: (model: ChatModel) => Promise<void>): Promise<void> {
  const model = await loadModel(DIR, { threads: 1 });
  try {
    await fn(model);
  } finally {
    await model.dispose();
  }
}

test('a sequence joining a running batch decodes what it decodes alone (VTW rows at their own layers), sharing decode calls', () => withModel(async (model) => {
  const a = await imagePrompt(model, 0, 1);
  const b = await imagePrompt(model, 1, 3);
  const opts = { maxNewTokens: 12, ignoreEos: true };
  let second: Promise<GenerationResult> | undefined;
  // B arrives while A is decoding: at A's third decoder call (its prefill being the first).
  const batcher: Batcher = new Batcher(observed(model, (n) => {
    if (n === 3) second = batcher.submit(b.prompt, opts);
  }));
  const first = await batcher.submit(a.prompt, opts);
  const joined = await second!;
  assert.deepEqual(first.ids, a.greedy, 'A matches its reference');
  assert.deepEqual(joined.ids, b.greedy, 'B, which joined mid-run, matches its reference');
  assert.equal(first.finishReason, 'length');
  assert.equal(joined.finishReason, 'length');
  // 11 decode steps each (the first token comes from the prefill); those they share count once.
  const { decodeSteps, decodeRows, prefills } = batcher.counters;
  assert.equal(decodeRows, 22);
  assert.equal(prefills, 2);
  assert.ok(decodeSteps < 22 && decodeSteps >= 11, `shared steps: ${decodeSteps} calls for 22 rows`);
  assert.equal(batcher.batchSize, 0, 'both left the batch');
}));

test('each sequence keeps its own sampling, stop strings and cancellation', () => withModel(async (model) => {
  const sampled: SubmitOptions = { maxNewTokens: 16, ignoreEos: true, temperature: 0.9, topK: 40, seed: 7 };
  const greedy: SubmitOptions = { maxNewTokens: 16, ignoreEos: true };
  const [p1, p2, p3] = await Promise.all(['The cat sat on the mat.', 'A quick brown fox', 'Hello there'].map((t) => textPrompt(model, t)));
  const sampledAlone = await alone(model, p1!, sampled);
  const greedyAlone = await alone(model, p2!, greedy);
  // A stop string from the greedy run's own text: the batched run must end right before it.
  const text = greedyAlone.text;
  assert.ok(text.length >= 6, `greedy text long enough to cut: ${JSON.stringify(text)}`);
  const stop = text.slice(3, 5);
  const stopped: SubmitOptions = { ...greedy, stop: [stop] };

  const leave = new AbortController();
  const batcher = new Batcher(observed(model, (n) => n === 4 && leave.abort()));
  const seen: string[] = [];
  const [r1, r2, r3] = await Promise.all([
    batcher.submit(p1!, sampled),
    batcher.submit(p2!, stopped, (_id, piece) => seen.push(piece)),
    batcher.submit(p3!, { ...greedy, signal: leave.signal }),
  ]);
  assert.deepEqual(r1!.ids, sampledAlone.ids, 'the sampled row draws from its own seeded source');
  assert.equal(r1!.text, sampledAlone.text);
  assert.equal(r2!.finishReason, 'stop');
  assert.equal(r2!.text, text.slice(0, text.indexOf(stop)), 'the text ends before the stop string');
  assert.equal(seen.join(''), r2!.text, 'streamed pieces are the text');
  assert.equal(r3!.finishReason, 'cancelled');
  assert.ok(r3!.ids.length < 16, `the cancelled row stopped early (${r3!.ids.length} tokens)`);
}));

test('at most maxBatch sequences decode together; the others wait and still decode the same', () => withModel(async (model) => {
  const a = await imagePrompt(model, 0, 2);
  const b = await imagePrompt(model, 1, 1);
  const opts = { maxNewTokens: 6, ignoreEos: true };
  const batcher = new Batcher(model, 1);
  const results = await Promise.all([batcher.submit(a.prompt, opts), batcher.submit(b.prompt, opts)]);
  assert.deepEqual(results.map((r) => r.ids), [a.greedy.slice(0, 6), b.greedy.slice(0, 6)]);
  assert.equal(batcher.counters.decodeSteps, 10, 'one at a time: 5 steps each, none shared');
  assert.equal(batcher.counters.decodeRows, 10);
}));

test('a prompt longer than the context is refused before any compute', () => withModel(async (model) => {
  const n = model.decoder.config.maxPositions + 1;
  const prompt = { embeds: new Float32Array(n * model.decoder.config.hidden), positions: Array.from({ length: n }, (_, i) => i), textIds: [], visual: [] };
  const batcher = new Batcher(model);
  await assert.rejects(batcher.submit(prompt, { maxNewTokens: 2 }), /more than the context/);
  assert.equal(batcher.counters.prefills, 0);
}));

test('KVCache.gather: rows taken from two caches, each with its per-layer lengths; empty rows hold nothing', () => {
  const kvHeads = 2, headDim = 3, groups = [0, 1];
  const fill = (cache: KVCache, base: number) => {
    cache.lengths.forEach((lens, g) => {
      cache.reserve(g, Math.max(...lens));
      const { k, v } = cache.past(g);
      for (let i = 0; i < k.length; i++) {
        k[i] = base + i;
        v[i] = -(base + i);
      }
    });
  };
  const a = new KVCache(2, kvHeads, headDim, groups);
  a.lengths[0] = [3, 5];
  a.lengths[1] = [2, 5];
  fill(a, 1000);
  const b = new KVCache(1, kvHeads, headDim, groups);
  b.lengths[0] = [4];
  b.lengths[1] = [4];
  fill(b, 5000);
  const out = KVCache.gather(a, [{ from: b, row: 0 }, undefined, { from: a, row: 1 }]);
  assert.equal(out.batch, 3);
  assert.deepEqual(out.lengths, [[4, 0, 5], [4, 0, 5]]);
  for (let layer = 0; layer < 2; layer++) {
    const cap = out.capacityOf(layer);
    assert.ok(cap >= 5);
    const row = (cache: KVCache, r: number, h: number, t: number) => {
      const p = cache.past(layer);
      const at = ((r * kvHeads + h) * p.capacity + t) * headDim;
      return [...p.k.subarray(at, at + headDim), ...p.v.subarray(at, at + headDim)];
    };
    for (let h = 0; h < kvHeads; h++) {
      for (let t = 0; t < 4; t++) assert.deepEqual(row(out, 0, h, t), row(b, 0, h, t));
      for (let t = 0; t < 5; t++) assert.deepEqual(row(out, 2, h, t), row(a, 1, h, t));
      assert.deepEqual(row(out, 1, h, 0), [0, 0, 0, 0, 0, 0]);
    }
  }
});

test('KVCache.gather: all of one cache\'s rows in order are that cache, not a copy; any other selection copies', () => {
  const a = new KVCache(2, 2, 3, [0]);
  a.lengths[0] = [3, 5];
  a.reserve(0, 0);
  assert.equal(KVCache.gather(a, [{ from: a, row: 0 }, { from: a, row: 1 }]), a);
  for (const rows of [[{ from: a, row: 1 }, { from: a, row: 0 }], [{ from: a, row: 0 }], [{ from: a, row: 0 }, { from: a, row: 1 }, undefined]]) {
    const out = KVCache.gather(a, rows);
    assert.notEqual(out, a);
    assert.notEqual(out.past(0).k, a.past(0).k);
  }
});
