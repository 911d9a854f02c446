// tiny-llama parity (issue #3): prefill logits, cached greedy decoding, no-cache recomputation, batching,
// and Meta's layout of the same weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, rename, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { writeSafetensors } from '../src/io/safetensors-write.js';
import { CausalLM, openLlama } from '../src/models/llama/load.js';
import { argmax } from '../src/generate/sampling.js';
import { generateAll } from '../src/generate/generate.js';
import { loadTokenizer } from '../src/text/load.js';
import { InputError } from '../src/errors.js';
import { writeMetaLlama } from './helpers/meta-llama.js';
import { maxAbsDiff } from './helpers/compare.js';

const DIR = 'test/fixtures/tiny-llama';

async function expected(i: number) {
  const src = await openCheckpoint(`${DIR}/expected/prompt${i}.safetensors`);
  const ids = (a: Uint8Array) => Array.from(new BigInt64Array(a.slice().buffer), Number);
  const out = {
    inputIds: ids(await src.read('input_ids')),
    greedyIds: ids(await src.read('greedy_ids')),
    prefill: await src.readFloat32('prefill_logits'),
    steps: await src.readFloat32('greedy_step_logits'),
  };
  await src.close();
  return out;
}


async function prefill(lm: CausalLM, ids: number[]): Promise<Float32Array> {
  const positions = ids.map((_, i) => i);
  return (await lm.decoder.forward(lm.decoder.newCache(1), { embeds: lm.embed(ids), seq: ids.length, counts: [ids.length], positions: [positions], logitRows: [positions] })).logits;
}

test('tiny-llama: prefill logits within 1e-4, cached greedy tokens and step logits identical to the reference', async () => {
  const lm = await CausalLM.build(await openLlama(DIR), { threads: 1 });
  const tokenizer = await loadTokenizer(DIR);
  for (const i of [0, 1, 2]) {
    const ref = await expected(i);
    assert.ok(maxAbsDiff(await prefill(lm, ref.inputIds), ref.prefill) <= 1e-4, `prompt ${i} prefill`);
    // Step by step with the cache, comparing each step's logits.
    const cache = lm.decoder.newCache(1);
    const L = ref.inputIds.length;
    let { logits } = await lm.decoder.forward(cache, { embeds: lm.embed(ref.inputIds), seq: L, counts: [L], positions: [ref.inputIds.map((_, j) => j)], logitRows: [[L - 1]] });
    const got: number[] = [];
    for (let t = 0; t < 12; t++) {
      assert.ok(maxAbsDiff(logits, ref.steps.subarray(t * 400, (t + 1) * 400)) <= 1e-4, `prompt ${i} step ${t} logits`);
      got.push(argmax(logits));
      ({ logits } = await lm.decoder.forward(cache, { embeds: lm.embed([got[t]!]), seq: 1, counts: [1], positions: [[L + t]], logitRows: [[0]] }));
    }
    assert.deepEqual(got, ref.greedyIds, `prompt ${i} greedy ids`);
    // The generation loop gives the same tokens (EOS ignored, as the reference does).
    const [result] = await generateAll({ decoder: lm.decoder, embed: (ids) => lm.embed(ids), tokenizer },
      [{ embeds: lm.embed(ref.inputIds), positions: ref.inputIds.map((_, j) => j), textIds: ref.inputIds, visual: [] }], { maxNewTokens: 12, ignoreEos: true });
    assert.deepEqual(result!.ids, ref.greedyIds);
    assert.equal(result!.finishReason, 'length');
    // No-cache recomputation: every step recomputed from scratch picks the same token.
    for (let t = 0; t < 12; t++) {
      const seq = [...ref.inputIds, ...ref.greedyIds.slice(0, t)];
      const all = await prefill(lm, seq);
      assert.equal(argmax(all.subarray((seq.length - 1) * 400)), ref.greedyIds[t], `prompt ${i} no-cache step ${t}`);
    }
  }
  await lm.dispose();
});

test('several sequences of different lengths in one batch give each one its own logits and tokens', async () => {
  const lm = await CausalLM.build(await openLlama(DIR), { threads: 1 });
  const tokenizer = await loadTokenizer(DIR);
  const refs = await Promise.all([0, 1, 2].map(expected));
  const prompts = refs.map((r) => ({ embeds: lm.embed(r.inputIds), positions: r.inputIds.map((_, j) => j), textIds: r.inputIds, visual: [] }));
  const results = await generateAll({ decoder: lm.decoder, embed: (ids) => lm.embed(ids), tokenizer }, prompts, { maxNewTokens: 12, ignoreEos: true });
  results.forEach((r, i) => assert.deepEqual(r.ids, refs[i]!.greedyIds, `row ${i}`));
  // All positions of a padded batch prefill match the references.
  const seq = Math.max(...refs.map((r) => r.inputIds.length));
  const embeds = new Float32Array(3 * seq * 64);
  refs.forEach((r, b) => embeds.set(lm.embed(r.inputIds), b * seq * 64));
  const { logits, n } = await lm.decoder.forward(lm.decoder.newCache(3), {
    embeds, seq, counts: refs.map((r) => r.inputIds.length), positions: refs.map((r) => r.inputIds.map((_, j) => j)),
    logitRows: refs.map((r) => r.inputIds.map((_, j) => j)),
  });
  refs.forEach((r, b) => {
    const rows = logits.subarray(b * n * 400, b * n * 400 + r.inputIds.length * 400);
    assert.ok(maxAbsDiff(rows, r.prefill) <= 1e-4, `batched row ${b}`);
  });
  await lm.dispose();
});

const META_PARAMS = { dim: 64, multiple_of: 4, n_heads: 4, n_layers: 4, norm_eps: 1e-5, vocab_size: -1 };

for (const shards of [1, 2]) {
  test(`Meta layout (params.json, Meta names, interleaved RoPE rows${shards > 1 ? `, ${shards} model-parallel shards merged` : ''}) gives the same logits as the HF layout`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'egret-meta-'));
    try {
      await writeMetaLlama(DIR, dir, { heads: 4, params: META_PARAMS, shards });
      await copyFile(`${DIR}/tokenizer.model`, join(dir, 'tokenizer.model'));
      const meta = await CausalLM.build(await openLlama(dir), { threads: 1 });
      const hf = await CausalLM.build(await openLlama(DIR), { threads: 1 });
      const ref = await expected(0);
      const metaLogits = await prefill(meta, ref.inputIds);
      assert.ok(maxAbsDiff(metaLogits, ref.prefill) <= 1e-4, 'against the PyTorch reference');
      assert.ok(maxAbsDiff(metaLogits, await prefill(hf, ref.inputIds)) <= 1e-4, 'against the HF layout');
      await Promise.all([meta.dispose(), hf.dispose()]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('Meta shards that disagree on a tensor\'s shape, or are not numbered from 00, are refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-meta-'));
  try {
    await writeMetaLlama(DIR, dir, { heads: 4, params: META_PARAMS, shards: 2 });
    const second = await openCheckpoint(join(dir, 'consolidated.01.pth'));
    const tensors = Object.fromEntries(await Promise.all(second.list().map(async ({ name, shape }) =>
      [name, { dtype: 'F32' as const, shape: name === 'norm.weight' ? [shape[0]! - 1] : shape, data: (await second.readFloat32(name)).subarray(0, name === 'norm.weight' ? shape[0]! - 1 : undefined) }])));
    await second.close();
    await writeSafetensors(join(dir, 'consolidated.01.pth'), tensors);
    await assert.rejects(openLlama(dir), (e: Error) => e instanceof InputError && /'norm\.weight' is F32 \[63\] in shard 1 but F32 \[64\] in shard 0/.test(e.message));
    await rename(join(dir, 'consolidated.01.pth'), join(dir, 'consolidated.02.pth'));
    await assert.rejects(openLlama(dir), (e: Error) => e instanceof InputError && /not numbered 00 to 1/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a prompt longer than the context is refused before any compute', async () => {
  const lm = await CausalLM.build(await openLlama(DIR), { threads: 1 });
  const tokenizer = await loadTokenizer(DIR);
  const n = lm.config.maxPositions + 1;
  const prompt = { embeds: new Float32Array(n * 64), positions: Array.from({ length: n }, (_, i) => i), textIds: [], visual: [] };
  await assert.rejects(generateAll({ decoder: lm.decoder, embed: (ids) => lm.embed(ids), tokenizer }, [prompt], { maxNewTokens: 1 }),
    (e: Error) => e instanceof InputError && /2049 tokens.*context of 2048/.test(e.message));
  await lm.dispose();
});
