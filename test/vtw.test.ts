// VTW (issue #5) on tiny-llava15: withdrawal before every K against the references (last logits, cached greedy
// decoding, per-layer cache lengths), the KL curve and the chosen K, batches whose rows withdraw differently,
// and the CLI (--vtw-layer, egret calibrate vtw with its sidecar).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { loadModel, type ChatModel } from '../src/models/index.js';
import { prefillCall, type PreparedPrompt } from '../src/models/prompt.js';
import { argmax } from '../src/generate/sampling.js';
import { generateAll } from '../src/generate/generate.js';
import { withdrawVisualTokens, klDivergence, chooseWithdrawalLayer } from '../src/methods/vtw.js';
import { calibrateVtw } from '../src/methods/vtw-calibrate.js';
import { loadImage } from '../src/vision/decode.js';
import { assertInputError, egretSync } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/compare.js';

const DIR = 'test/fixtures/tiny-llava15';
const IMAGES = ['test/fixtures/images/wide_rgb.png', 'test/fixtures/images/rgba.png'];
const QUESTIONS = ['What is shown in this image?', 'Describe the picture in detail.'];
const VOCAB = 401;

interface VtwReference {
  llavaIds: number[];
  n: number;
  baseline: Float32Array;
  byK: Map<number, { last: Float32Array; greedy: number[]; steps: Float32Array; kl: number; cacheLens: number[] }>;
}

async function reference(i: number): Promise<VtwReference> {
  const src = await openCheckpoint(`${DIR}/expected/sample${i}.safetensors`);
  const ints = async (name: string) => Array.from(new BigInt64Array((await src.read(name)).slice().buffer), Number);
  const prefill = await src.readFloat32('prefill_logits');
  const n = prefill.length / VOCAB;
  const byK = new Map();
  for (const k of [1, 2, 3]) {
    byK.set(k, {
      last: await src.readFloat32(`vtw.K${k}.last_logits`),
      greedy: await ints(`vtw.K${k}.greedy_ids`),
      steps: await src.readFloat32(`vtw.K${k}.greedy_step_logits`),
      kl: new Float64Array((await src.read(`vtw.K${k}.kl`)).slice().buffer)[0]!,
      cacheLens: await ints(`vtw.K${k}.cache_lens`),
    });
  }
  const out = { llavaIds: await ints('input_ids_llava'), n, baseline: prefill.slice((n - 1) * VOCAB), byK };
  await src.close();
  return out;
}


async function prepared(model: ChatModel, ref: VtwReference, i: number): Promise<PreparedPrompt> {
  return model.prepare(ref.llavaIds, [await loadImage(IMAGES[i]!)]);
}

test('VTW on tiny-llava15: every K matches the reference logits, cached greedy run and per-layer cache lengths', async () => {
  const model = await loadModel(DIR, { threads: 1 });
  try {
    for (const i of [0, 1]) {
      const ref = await reference(i);
      const base = await prepared(model, ref, i);
      assert.equal(base.positions.length, ref.n);
      assert.equal(base.visual.length, 16);
      for (const [k, exp] of ref.byK) {
        const prompt = withdrawVisualTokens(base, k, model.decoder.config.layers);
        const cache = model.decoder.newCache(1);
        let { logits } = await model.decoder.forward(cache, prefillCall(model.decoder, [prompt]));
        assert.ok(maxAbsDiff(logits, exp.last) <= 1e-4, `sample ${i} K=${k} last logits`);
        const ids: number[] = [];
        for (let t = 0; t < 12; t++) {
          assert.ok(maxAbsDiff(logits, exp.steps.subarray(t * VOCAB, (t + 1) * VOCAB)) <= 1e-4, `sample ${i} K=${k} step ${t}`);
          ids.push(argmax(logits));
          if (t < 11) ({ logits } = await model.decoder.forward(cache, { embeds: model.embed([ids[t]!]), seq: 1, counts: [1], positions: [[ref.n + t]], logitRows: [[0]] }));
        }
        assert.deepEqual(ids, exp.greedy, `sample ${i} K=${k} greedy ids`);
        assert.deepEqual(cache.lengths.map((l) => l[0]), exp.cacheLens, `sample ${i} K=${k} cache lengths`);
        // The first answer token's KL against the baseline, as the official calibration computes it.
        const kl = klDivergence(exp.last, ref.baseline);
        assert.ok(Math.abs(kl - exp.kl) <= Math.max(1e-6, 1e-3 * exp.kl), `sample ${i} K=${k} KL ${kl} vs ${exp.kl}`);
      }
      // Withdrawal at K = L is the baseline itself.
      const same = withdrawVisualTokens(base, 4, 4);
      assert.equal(same, base);
    }
  } finally {
    await model.dispose();
  }
});

test('rows of one batch may withdraw at different layers (or not at all) and each matches its own reference', async () => {
  const model = await loadModel(DIR, { threads: 1 });
  try {
    const refs = await Promise.all([0, 1].map(reference));
    const bases = await Promise.all(refs.map((r, i) => prepared(model, r, i)));
    const prompts = [withdrawVisualTokens(bases[0]!, 1, 4), bases[1]!, withdrawVisualTokens(bases[1]!, 3, 4), withdrawVisualTokens(bases[0]!, 2, 4)];
    const expected = [refs[0]!.byK.get(1)!.greedy, undefined, refs[1]!.byK.get(3)!.greedy, refs[0]!.byK.get(2)!.greedy];
    const results = await generateAll(model, prompts, { maxNewTokens: 12, ignoreEos: true });
    results.forEach((r, b) => {
      if (expected[b]) assert.deepEqual(r.ids, expected[b], `row ${b}`);
    });
    const alone = await generateAll(model, [bases[1]!], { maxNewTokens: 12, ignoreEos: true });
    assert.deepEqual(results[1]!.ids, alone[0]!.ids, 'the row without VTW equals its own run');
  } finally {
    await model.dispose();
  }
});

test('calibration: the mean KL curve and the K chosen for each eta, as recorded', async () => {
  const summary = JSON.parse(await readFile(`${DIR}/expected/summary.json`, 'utf8'));
  const model = await loadModel(DIR, { threads: 1 });
  try {
    const refs = await Promise.all([0, 1].map(reference));
    const prompts = await Promise.all(refs.map((r, i) => prepared(model, r, i)));
    const result = await calibrateVtw(model.decoder, prompts, { minLayer: 1, eta: 0.003 });
    for (const k of [1, 2, 3]) {
      const expectedMean = (refs[0]!.byK.get(k)!.kl + refs[1]!.byK.get(k)!.kl) / 2;
      const got = result.kl.get(k)!;
      assert.ok(Math.abs(got - expectedMean) <= Math.max(1e-6, 1e-3 * expectedMean), `K=${k}: ${got} vs ${expectedMean}`);
    }
    assert.equal(result.layer, 2);
    assert.equal(chooseWithdrawalLayer(result.kl, 0.05), 1);
    assert.equal(chooseWithdrawalLayer(result.kl, 1e-9), undefined);
    assert.equal(summary.samples.length, 2);
  } finally {
    await model.dispose();
  }
});

test('CLI: --vtw-layer, egret calibrate vtw (curve, --json, --save sidecar used by default, no-K case)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-vtw-'));
  try {
    const model = join(dir, 'model');
    await cp(DIR, model, { recursive: true });
    const data = join(dir, 'calib.jsonl');
    await writeFile(data, IMAGES.map((img, i) => JSON.stringify({ image: resolve(img), prompt: QUESTIONS[i] })).join('\n') + '\n');
    const ref = await reference(0);
    const args = ['generate', '--model', model, '--image', IMAGES[0]!, '--prompt', QUESTIONS[0]!, '--max-new-tokens', '12', '--ignore-eos', '--json'];
    const k2run = egretSync(...args, '--vtw-layer', '2');
    assert.equal(k2run.code, 0, k2run.stderr);
    const k2 = JSON.parse(k2run.stdout);
    assert.deepEqual(k2.ids, ref.byK.get(2)!.greedy);
    const plain = JSON.parse(egretSync(...args).stdout);
    assert.ok(k2.stats.flops < plain.stats.flops, 'VTW saves FLOPs');

    const calib = egretSync('calibrate', 'vtw', '--model', model, '--data', data, '--min-layer', '1', '--json', '--save');
    assert.equal(calib.code, 0, calib.stderr);
    const out = JSON.parse(calib.stdout);
    assert.equal(out.layer, 2);
    assert.deepEqual(Object.keys(out.kl), ['1', '2', '3']);
    assert.equal(JSON.parse(await readFile(join(model, 'egret-vtw.json'), 'utf8')).layer, 2);
    // Later runs use the saved K by default; --vtw-layer off disables it.
    assert.deepEqual(JSON.parse(egretSync(...args).stdout).ids, ref.byK.get(2)!.greedy);
    assert.deepEqual(JSON.parse(egretSync(...args, '--vtw-layer', 'off').stdout).ids, plain.ids);

    const none = egretSync('calibrate', 'vtw', '--model', model, '--data', data, '--eta', '1e-12', '--json');
    assert.equal(none.code, 0, none.stderr);
    assert.equal(JSON.parse(none.stdout).layer, null);
    assert.match(none.stderr, /no withdrawal layer/);

    const textOnly = join(dir, 'text.jsonl');
    await writeFile(textOnly, `${JSON.stringify({ prompt: 'no image here' })}\n`);
    assertInputError(egretSync('calibrate', 'vtw', '--model', model, '--data', textOnly), /.*sample 1 has no visual tokens/);
    assertInputError(egretSync('calibrate', 'vtw', '--model', model, '--data', join(dir, 'missing.jsonl')), /cannot read .*missing\.jsonl/);
    assertInputError(egretSync(...args, '--vtw-layer', '0'), /--vtw-layer/);
    // A layer beyond the model, or a prompt ending with its image (no text token to answer from), is refused.
    assertInputError(egretSync(...args, '--vtw-layer', '5'), /VTW layer must be an integer in 1\.\.4/);
    assertInputError(egretSync('generate', '--model', model, '--image', IMAGES[0]!, '--ids=1,-200', '--vtw-layer', '1', '--json'), /VTW needs a text token after the last image/);
    // Quantised weights work with VTW too.
    const q4 = egretSync(...args, '--vtw-layer', '2', '--dtype', 'q4');
    assert.equal(q4.code, 0, q4.stderr);
    assert.equal(JSON.parse(q4.stdout).ids.length, 12);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
