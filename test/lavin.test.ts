// tiny-lavin parity (issue #10): preprocessing, CLIP class tokens and routes, visual tokens, LLaMA routes, prefill
// logits of every row (the modality token's first), greedy decoding at the corrected and the official positions —
// with the state-dict CLIP and with the TorchScript archive — and the answer extraction of LaVIN's eval.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops/index.js';
import { openCheckpoint, openCheckpointFile, type TensorSource } from '../src/io/checkpoint.js';
import { ort, Session } from '../src/runtime/session.js';
import { loadModel, type ChatModel } from '../src/models/index.js';
import { lavinSettings } from '../src/models/lavin/settings.js';
import { buildLavinVision, lavinClipConfig } from '../src/models/lavin/vision.js';
import { prefillCall } from '../src/models/prompt.js';
import { generateAll } from '../src/generate/generate.js';
import { argmax } from '../src/generate/sampling.js';
import { extractSqaLetter, sqaPredictionIndex } from '../src/eval/scienceqa.js';
import { loadImage } from '../src/vision/decode.js';
import { preprocessLavin } from '../src/vision/pipelines.js';
import { maxAbsDiff } from './helpers/compare.js';

const DIR = 'test/fixtures/tiny-lavin';
const ADAPTER = `${DIR}/lavin/checkpoint-19.pth`;
const CLIPS = { 'state dict': `${DIR}/clip/ViT-tiny.pt`, TorchScript: `${DIR}/clip/ViT-tiny-jit.pt` } as const;
const VOCAB = 400;

interface Sample {
  key: string;
  indicator: number;
  image_file?: string;
  prompt: string;
  input_ids_contract: number[];
}
interface Extraction { text: string; n_choices: number; extracted: string; pred_idx: number | null; random_fallback: boolean }
const expected = JSON.parse(readFileSync(`${DIR}/expected.json`, 'utf8')) as { samples: Sample[]; answer_extraction: Extraction[] };
const SAMPLES = expected.samples;

async function withReference<T>(run: (ref: TensorSource) => Promise<T>): Promise<T> {
  const ref = await openCheckpoint(`${DIR}/expected_infer.safetensors`);
  try {
    return await run(ref);
  } finally {
    await ref.close();
  }
}

const ids = async (ref: TensorSource, name: string) => Array.from(new BigInt64Array((await ref.read(name)).slice().buffer), Number);

async function withModel<T>(clip: string, officialPositions: boolean, run: (model: ChatModel) => Promise<T>): Promise<T> {
  const model = await loadModel(`${DIR}/llama`, { threads: 1, lavin: { clip, adapter: ADAPTER, officialPositions } });
  try {
    return await run(model);
  } finally {
    await model.dispose();
  }
}

async function prepare(model: ChatModel, sample: Sample) {
  const images = sample.image_file ? [await loadImage(`${DIR}/${sample.image_file}`)] : [];
  return model.prepare(sample.input_ids_contract, images);
}

test('LaVIN preprocessing: the bicubic 224×224 image exact, pixels within 1e-6', async () => {
  await withReference(async (ref) => {
    for (const sample of SAMPLES.filter((s) => s.image_file)) {
      const { image, pixelValues } = preprocessLavin(await loadImage(`${DIR}/${sample.image_file}`));
      assert.deepEqual(Buffer.from(image.data), Buffer.from(await ref.read(`${sample.key}.image_u8`)), `${sample.key} image_u8`);
      if (sample.key === 's0') assert.ok(maxAbsDiff(pixelValues, await ref.readFloat32('s0.pixels')) <= 1e-6, 's0 pixels');
    }
  });
});

/** Runs LaVIN's image path on pixels [n, 3, 224, 224], returning its routes, class tokens and visual tokens. */
async function runVision(clipFile: string, pixels: Float32Array, n: number) {
  const [clip, adapters] = await Promise.all([openCheckpointFile(clipFile), openCheckpointFile(ADAPTER)]);
  try {
    const config = await lavinClipConfig(clip, clipFile);
    const settings = lavinSettings(adapters, ADAPTER, { llmWidth: 64, clipWidth: config.hidden, clipLayers: config.layers });
    const graph = new Graph('lavin-vision-test');
    const input = graph.input('pixel_values', 'float32', [n, 3, 224, 224]);
    const vision = buildLavinVision(graph, clip, adapters, config, settings, input);
    graph.output(op.concat(vision.routes.map((r) => op.unsqueeze(r, [1])), 1), 'routes');
    graph.output(vision.cls, 'cls');
    graph.output(vision.tokens, 'tokens');
    const session = await Session.fromGraph(graph, { threads: 1 });
    try {
      const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [n, 3, 224, 224]) });
      return { routes: out['routes']!.data as Float32Array, cls: out['cls']!.data as Float32Array, tokens: out['tokens']!.data as Float32Array };
    } finally {
      await session.dispose();
    }
  } finally {
    await Promise.all([clip.close(), adapters.close()]);
  }
}

for (const [kind, clipFile] of Object.entries(CLIPS)) {
  test(`LaVIN image path with the ${kind} CLIP: routes of every block within 1e-5, class tokens and visual tokens within 1e-4`, async () => {
    await withReference(async (ref) => {
      for (const sample of SAMPLES.filter((s) => s.image_file)) {
        const { pixelValues } = preprocessLavin(await loadImage(`${DIR}/${sample.image_file}`));
        const got = await runVision(clipFile, pixelValues, 1);
        assert.ok(maxAbsDiff(got.routes, await ref.readFloat32(`${sample.key}.clip_routes`)) <= 1e-5, `${sample.key} clip_routes`);
        assert.ok(maxAbsDiff(got.cls, await ref.readFloat32(`${sample.key}.clip_cls`)) <= 1e-4, `${sample.key} clip_cls`);
        assert.ok(maxAbsDiff(got.tokens, await ref.readFloat32(`${sample.key}.visual_tokens`)) <= 1e-4, `${sample.key} visual_tokens`);
      }
    });
  });
}

test('LaVIN batched images route each on its own: [zero image, s0] equals the batch-1 results, not the slot-0 quirk', async () => {
  await withReference(async (ref) => {
    const { pixelValues } = preprocessLavin(await loadImage(`${DIR}/images/a0.png`));
    const pixels = new Float32Array(2 * pixelValues.length);
    pixels.set(pixelValues, pixelValues.length);
    const { cls } = await runVision(CLIPS['state dict'], pixels, 2);
    const self = await ref.readFloat32('clip_batch_quirk.cls_self_routing');
    assert.ok(maxAbsDiff(cls, self) <= 1e-4, 'per-image routing');
    assert.ok(maxAbsDiff(cls.subarray(0, cls.length / 2), await ref.readFloat32('zero_image.clip_cls')) <= 1e-4, 'the zero image');
    // The quirk changes image 1's features (routed by the zero image): the check above tells the two apart.
    assert.ok(maxAbsDiff(self, await ref.readFloat32('clip_batch_quirk.cls_slot0_routing')) > 1e-3);
  });
});

for (const [kind, clipFile] of Object.entries(CLIPS)) {
  test(`LaVIN with the ${kind} CLIP: LLaMA routes, prefill logits of every row (row 0 the modality token) within 1e-4`, async () => {
    await withModel(clipFile, false, (model) => withReference(async (ref) => {
      for (const sample of SAMPLES) {
        const prompt = await prepare(model, sample);
        assert.ok(maxAbsDiff(prompt.conditioning!, await ref.readFloat32(`${sample.key}.llama_routes`)) <= 1e-5, `${sample.key} llama_routes`);
        const positions = Array.from(new Int32Array((await ref.read(`${sample.key}.positions`)).slice().buffer));
        assert.deepEqual([0, ...prompt.positions], positions, `${sample.key} positions`);
        const call = prefillCall(model.decoder, [prompt]);
        const rows = prompt.positions.map((_, i) => i);
        const { logits } = await model.decoder.forward(model.decoder.newCache(1), { ...call, logitRows: [rows] });
        const reference = await ref.readFloat32(`${sample.key}.prefill_logits`);
        assert.equal(reference.length, (rows.length + 1) * VOCAB);
        assert.ok(maxAbsDiff(prompt.leadingLogits!, reference.subarray(0, VOCAB)) <= 1e-4, `${sample.key} modality row`);
        assert.ok(maxAbsDiff(logits, reference.subarray(VOCAB)) <= 1e-4, `${sample.key} prompt rows`);
      }
    }));
  });
}

for (const mode of ['corrected', 'official'] as const) {
  for (const [kind, clipFile] of Object.entries(CLIPS)) {
    test(`LaVIN greedy decoding at the ${mode} positions, ${kind} CLIP: 12 ids identical, each step's logits within 1e-4`, async () => {
      await withModel(clipFile, mode === 'official', (model) => withReference(async (ref) => {
        for (const sample of SAMPLES) {
          const want = await ids(ref, `${sample.key}.gen_${mode}.ids`);
          const stepLogits = await ref.readFloat32(`${sample.key}.gen_${mode}.step_logits`);
          const prompt = await prepare(model, sample);
          const [result] = await generateAll(model, [prompt], { maxNewTokens: 12, ignoreEos: true, temperature: 0 });
          assert.deepEqual(result!.ids, want, `${sample.key} ids`);
          // The same steps by hand, feeding the reference ids, to compare each step's logits.
          const cache = model.decoder.newCache(1);
          let { logits } = await model.decoder.forward(cache, prefillCall(model.decoder, [prompt]));
          const L = prompt.positions.length;
          for (let t = 0; t < 12; t++) {
            assert.ok(maxAbsDiff(logits, stepLogits.subarray(t * VOCAB, (t + 1) * VOCAB)) <= 1e-4, `${sample.key} step ${t}`);
            if (t === 11) break;
            // Generated token t sits at position L + 1 + t (training's), or L + t (lavin/generator.py's).
            const position = (mode === 'official' ? L : L + 1) + t;
            ({ logits } = await model.decoder.forward(cache, { embeds: model.embed([want[t]!]), seq: 1, counts: [1], positions: [[position]], logitRows: [[0]] }));
          }
        }
      }));
    });
  }
}

test("LaVIN's answer extraction (eval.py): the first 'The answer is X', the letter among the problem's choices", () => {
  assert.ok(expected.answer_extraction.length > 0);
  for (const c of expected.answer_extraction) {
    const letter = extractSqaLetter(c.text, 'lavin');
    assert.equal(letter ?? 'FAILED', c.extracted, JSON.stringify(c.text));
    const index = sqaPredictionIndex(letter, c.n_choices);
    assert.equal(index ?? null, c.pred_idx, JSON.stringify(c));
    assert.equal(index === undefined, c.random_fallback);
  }
});

test('LaVIN at --dtype q8: the LLaMA quantised, the adapters not (layer 0 routes exact), top-1 of every prompt unchanged', async () => {
  const model = await loadModel(`${DIR}/llama`, { threads: 1, dtype: 'q8', lavin: { clip: CLIPS['state dict'], adapter: ADAPTER } });
  try {
    await withReference(async (ref) => {
      for (const sample of SAMPLES) {
        const prompt = await prepare(model, sample);
        const routes = await ref.readFloat32(`${sample.key}.llama_routes`);
        assert.ok(maxAbsDiff(prompt.conditioning!.subarray(0, 2), routes.subarray(0, 2)) <= 1e-6, `${sample.key} layer 0 route`);
        const { logits } = await model.decoder.forward(model.decoder.newCache(1), prefillCall(model.decoder, [prompt]));
        const reference = await ref.readFloat32(`${sample.key}.prefill_logits`);
        const last = reference.subarray(reference.length - VOCAB);
        assert.equal(argmax(logits), argmax(last), `${sample.key} top-1`);
        assert.ok(maxAbsDiff(logits, last) > 1e-6, 'the LLaMA really is quantised');
      }
    });
  } finally {
    await model.dispose();
  }
});
