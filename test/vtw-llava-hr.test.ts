// VTW on LLaVA-HR (issue #5): tiny-llava-hr's K=2 references — the kept rows' prefill logits and positions through
// `egret logits`, the cached greedy run with its decode logits, and the per-layer cache lengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { loadModel } from '../src/models/index.js';
import { prefillCall } from '../src/models/prompt.js';
import { argmax } from '../src/generate/sampling.js';
import { withdrawVisualTokens } from '../src/methods/vtw.js';
import { loadImage } from '../src/vision/decode.js';
import { maxAbsDiff } from './helpers/compare.js';
import './helpers/env.js';

const DIR = 'test/fixtures/tiny-llava-hr';
const VOCAB = 400;


test('VTW K=2 on tiny-llava-hr: kept rows, their logits, the cached greedy run and cache lengths', async () => {
  const expected = JSON.parse(await readFile(`${DIR}/expected.json`, 'utf8'));
  const ref = await openCheckpoint(`${DIR}/expected.safetensors`);
  const dir = await mkdtemp(join(tmpdir(), 'egret-vtw-hr-'));
  const model = await loadModel(DIR, { threads: 1 });
  try {
    for (const image of expected.images) {
      const name = image.name as string;
      const vtw = image.vtw;
      const file = `${DIR}/images/${name}.png`;
      // Through the CLI: one logits row per kept position, at its index in the expanded sequence.
      const out = join(dir, `${name}.safetensors`);
      const r = spawnSync(process.execPath, ['bin/egret', 'logits', '--model', DIR, '--image', file, '--prompt', image.question, '--vtw-layer', String(vtw.K), '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const got = await openCheckpoint(out);
      assert.deepEqual(Array.from(new Int32Array((await got.read('positions')).slice().buffer)), vtw.kept_positions);
      assert.deepEqual(Array.from(new Int32Array((await ref.read(`${name}.vtw.positions`)).slice().buffer)), vtw.kept_positions);
      assert.ok(maxAbsDiff(await got.readFloat32('logits'), await ref.readFloat32(`${name}.vtw.prefill_logits`)) <= 1e-4, `${name} prefill logits`);
      await got.close();
      // The cached greedy run.
      const inputIds = Array.from(new BigInt64Array((await ref.read(`${name}.input_ids`)).slice().buffer), Number);
      const prompt = withdrawVisualTokens(await model.prepare(inputIds, [await loadImage(file)]), vtw.K, model.decoder.config.layers);
      const cache = model.decoder.newCache(1);
      let { logits } = await model.decoder.forward(cache, prefillCall(model.decoder, [prompt]));
      const steps = await ref.readFloat32(`${name}.vtw.decode_logits`);
      const n = prompt.positions.length;
      const ids: number[] = [];
      for (let t = 0; t < 12; t++) {
        assert.ok(maxAbsDiff(logits, steps.subarray(t * VOCAB, (t + 1) * VOCAB)) <= 1e-4, `${name} step ${t}`);
        ids.push(argmax(logits));
        if (t < 11) ({ logits } = await model.decoder.forward(cache, { embeds: model.embed([ids[t]!]), seq: 1, counts: [1], positions: [[n + t]], logitRows: [[0]] }));
      }
      assert.deepEqual(ids, vtw.generated_ids);
      assert.deepEqual(cache.lengths.map((l) => l[0]), vtw.kv_cache_lengths_after_generation);
    }
  } finally {
    await model.dispose();
    await ref.close();
    await rm(dir, { recursive: true, force: true });
  }
});
