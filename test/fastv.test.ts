// FastV (issue #5's baseline peer) on tiny-llava15, K=2 R=0.5: scores, the kept image rows, last logits, and the
// static (KV-cache) greedy run with its cache lengths, as the references record them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertInputError, egretSync } from './helpers/cli.js';
import { readFile } from 'node:fs/promises';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { loadModel } from '../src/models/index.js';
import { prefillCall } from '../src/models/prompt.js';
import { argmax } from '../src/generate/sampling.js';
import { applyFastV, fastVScores, parseFastV } from '../src/methods/fastv.js';
import { loadImage } from '../src/vision/decode.js';
import { maxAbsDiff } from './helpers/compare.js';
import './helpers/env.js';

const DIR = 'test/fixtures/tiny-llava15';
const IMAGES = ['test/fixtures/images/wide_rgb.png', 'test/fixtures/images/rgba.png'];
const VOCAB = 401;


test('FastV K=2 R=0.5 on tiny-llava15 matches the released code\'s selection, logits and cached greedy run', async () => {
  const summary = JSON.parse(await readFile(`${DIR}/expected/summary.json`, 'utf8'));
  const model = await loadModel(DIR, { threads: 1 });
  try {
    for (const i of [0, 1]) {
      const src = await openCheckpoint(`${DIR}/expected/sample${i}.safetensors`);
      const ints = async (name: string) => Array.from(new BigInt64Array((await src.read(name)).slice().buffer), Number);
      const llavaIds = await ints('input_ids_llava');
      const expected = summary.samples[i].fastv;
      const base = await model.prepare(llavaIds, [await loadImage(IMAGES[i]!)]);
      const [scores] = await fastVScores(model.decoder, [base], 2);
      assert.ok(maxAbsDiff(scores!, await src.readFloat32('fastv.image_scores')) <= 1e-5, `sample ${i} scores`);
      const [prompt] = await applyFastV(model.decoder, [base], { layer: 2, ratio: 0.5 });
      const keptImageRows = prompt!.keep![2]!.filter((j) => base.visual.includes(j));
      assert.deepEqual(keptImageRows, await ints('fastv.keep_image_rows'), `sample ${i} kept rows`);
      assert.deepEqual(keptImageRows, expected.keep_image_rows);
      const cache = model.decoder.newCache(1);
      let { logits } = await model.decoder.forward(cache, prefillCall(model.decoder, [prompt!]));
      assert.ok(maxAbsDiff(logits, await src.readFloat32('fastv.last_logits')) <= 1e-4, `sample ${i} last logits`);
      const steps = await src.readFloat32('fastv.static.greedy_step_logits');
      const ids: number[] = [];
      const n = base.positions.length;
      for (let t = 0; t < 12; t++) {
        assert.ok(maxAbsDiff(logits, steps.subarray(t * VOCAB, (t + 1) * VOCAB)) <= 1e-4, `sample ${i} step ${t}`);
        ids.push(argmax(logits));
        if (t < 11) ({ logits } = await model.decoder.forward(cache, { embeds: model.embed([ids[t]!]), seq: 1, counts: [1], positions: [[n + t]], logitRows: [[0]] }));
      }
      assert.deepEqual(ids, await ints('fastv.static.greedy_ids'));
      assert.deepEqual(cache.lengths.map((l) => l[0]), expected.static_cache_lens);
      await src.close();
    }
  } finally {
    await model.dispose();
  }
});

test('--fastv K:R through the CLI, and its bad forms', () => {
  const run = (...extra: string[]) => egretSync('generate', '--model', DIR, '--image', IMAGES[0]!, '--prompt', 'What is shown in this image?', '--max-new-tokens', '12', '--ignore-eos', '--json', ...extra);
  const ok = run('--fastv', '2:50%');
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout).ids, [97, 222, 208, 288, 109, 155, 168, 305, 288, 109, 155, 168]);
  for (const [bad, pattern] of [['2', /K:R/], ['0:0.5', /K must be/], ['2:1.5', /R must be/], ['9:0.5', /below the model's 4 layers/]] as const) {
    assertInputError(run('--fastv', bad), pattern);
  }
  assertInputError(run('--fastv', '2:0.5', '--vtw-layer', '2'), /--fastv and --vtw-layer are alternatives/);
  assert.deepEqual(parseFastV('3:0.25'), { layer: 3, ratio: 0.25 });
});
