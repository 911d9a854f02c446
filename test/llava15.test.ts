// tiny-llava15 parity (issue #4): CLIP hidden states in both weight namings, LLaVA-1.5 pixel values, visual
// tokens, prefill logits and cached greedy decoding, and the CLI with images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../src/errors.js';
import { Graph } from '../src/graph/ir.js';
import { WeightScope } from '../src/graph/weights.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { writeSafetensors } from '../src/io/safetensors-write.js';
import { ort, Session } from '../src/runtime/session.js';
import {
  clipEmbeddings, clipEncoderLayer, clipHiddenState, clipPreLayerNorm, clipVisionConfigFromHf, clipVisionConfigFromOpenAi,
  dropClassToken, HF_CLIP_NAMING, OPENAI_CLIP_NAMING, type ClipTower, type ClipVisionConfig,
} from '../src/models/clip.js';
import { loadModel, type ChatModel } from '../src/models/index.js';
import { readJson } from '../src/models/llama/config.js';
import { argmax } from '../src/generate/sampling.js';
import { generateAll } from '../src/generate/generate.js';
import { IMAGE_TOKEN_INDEX, tokenizeImagePrompt } from '../src/text/image-prompt.js';
import { renderPrompt } from '../src/text/templates.js';
import { loadImage } from '../src/vision/decode.js';
import { preprocessLlavaPad } from '../src/vision/pipelines.js';
import { egretSync, assertInputError } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/compare.js';

const egret = (...args: string[]) => egretSync(...args, '--threads', '1');


const DIR = 'test/fixtures/tiny-llava15';
const IMAGES = ['test/fixtures/images/wide_rgb.png', 'test/fixtures/images/rgba.png'];
const QUESTIONS = ['What is shown in this image?', 'Describe the picture in detail.'];
const VOCAB = 401;
const HIDDEN = 64;

interface Sample {
  inputIds: number[];
  llavaIds: number[];
  greedyIds: number[];
  pixels: Float32Array;
  hidden: Float32Array;
  selected: Float32Array;
  features: Float32Array;
  prefill: Float32Array;
  steps: Float32Array;
}

async function sample(i: number): Promise<Sample> {
  const src = await openCheckpoint(`${DIR}/expected/sample${i}.safetensors`);
  const ids = async (name: string) => Array.from(new BigInt64Array((await src.read(name)).slice().buffer), Number);
  const out = {
    inputIds: await ids('input_ids'),
    llavaIds: await ids('input_ids_llava'),
    greedyIds: await ids('greedy_ids'),
    pixels: await src.readFloat32('pixel_values'),
    hidden: await src.readFloat32('clip_hidden_states'),
    selected: await src.readFloat32('selected_image_features'),
    features: await src.readFloat32('image_features'),
    prefill: await src.readFloat32('prefill_logits'),
    steps: await src.readFloat32('greedy_step_logits'),
  };
  await src.close();
  return out;
}


/** Every hidden state of a CLIP tower (transformers' indexing) for one image, built from the exported pieces. */
async function clipHiddenStates(tower: (graph: Graph) => ClipTower, pixels: Float32Array): Promise<Float32Array[]> {
  const graph = new Graph('clip');
  const t = tower(graph);
  const { imageSize, layers } = t.config;
  const input = graph.input('pixel_values', 'float32', ['batch', 3, imageSize, imageSize]);
  let h = graph.output(clipPreLayerNorm(t, clipEmbeddings(t, input)), 'hidden.0');
  for (let layer = 0; layer < layers; layer++) h = graph.output(clipEncoderLayer(t, layer, h), `hidden.${layer + 1}`);
  const session = await Session.fromGraph(graph, { threads: 1 });
  const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, imageSize, imageSize]) });
  await session.dispose();
  return Array.from({ length: layers + 1 }, (_, l) => out[`hidden.${l}`]!.data as Float32Array);
}

test('CLIP (transformers naming): every hidden state of tiny-llava15 within 1e-5', async () => {
  const cfg = await readJson(`${DIR}/config.json`);
  const config = clipVisionConfigFromHf(cfg['vision_config'] as Record<string, unknown>, `${DIR}/config.json`);
  const source = await openCheckpoint(`${DIR}/model.safetensors`);
  for (const i of [0, 1]) {
    const ref = await sample(i);
    const states = await clipHiddenStates((graph) => ({ config, scope: new WeightScope(graph, source, 'vision_tower.vision_model'), naming: HF_CLIP_NAMING, dtype: 'fp32' }), ref.pixels);
    const stride = ref.hidden.length / states.length;
    states.forEach((s, l) => assert.ok(maxAbsDiff(s, ref.hidden.subarray(l * stride, (l + 1) * stride)) <= 1e-5, `sample ${i} hidden state ${l}`));
  }
  await source.close();
});

async function towerConfig(): Promise<ClipVisionConfig> {
  const cfg = await readJson(`${DIR}/config.json`);
  return clipVisionConfigFromHf(cfg['vision_config'] as Record<string, unknown>, `${DIR}/config.json`);
}

test('pixel values of the LLaVA-1.5 pad pipeline, and the selected features (hidden_states[-2] without CLS)', async () => {
  const config = await towerConfig();
  const source = await openCheckpoint(`${DIR}/model.safetensors`);
  const graph = new Graph('clip');
  const tower = { config, scope: new WeightScope(graph, source, 'vision_tower.vision_model'), naming: HF_CLIP_NAMING, dtype: 'fp32' as const };
  const input = graph.input('pixel_values', 'float32', ['batch', 3, 56, 56]);
  graph.output(dropClassToken(clipHiddenState(tower, input, -2)), 'selected');
  const session = await Session.fromGraph(graph, { threads: 1 });
  for (const i of [0, 1]) {
    const ref = await sample(i);
    const pixels = preprocessLlavaPad(await loadImage(IMAGES[i]!), 56).pixelValues;
    assert.ok(maxAbsDiff(pixels, ref.pixels) <= 1e-6, `sample ${i} pixel values`);
    const out = await session.run({ pixel_values: new ort.Tensor('float32', ref.pixels, [1, 3, 56, 56]) });
    assert.deepEqual(out['selected']!.dims, [1, 16, 48]);
    assert.ok(maxAbsDiff(out['selected']!.data as Float32Array, ref.selected) <= 1e-5, `sample ${i} selected features`);
  }
  await session.dispose();
  await source.close();
});

test('CLIP (OpenAI naming, packed in_proj): tiny-lavin ViT-tiny.pt gives the same hidden states as its weights renamed to transformers names', async () => {
  const file = 'test/fixtures/tiny-lavin/clip/ViT-tiny.pt';
  const openai = await openCheckpoint(file);
  const config = clipVisionConfigFromOpenAi(openai, 'visual.', 4, file);
  assert.deepEqual(config, { hidden: 32, layers: 24, heads: 4, patchSize: 32, imageSize: 224, layerNormEps: 1e-5, activation: 'quick_gelu' });
  const dir = await mkdtemp(join(tmpdir(), 'egret-clip-'));
  try {
    const hfName: [RegExp, string][] = [
      [/^visual\.conv1\.weight$/, 'embeddings.patch_embedding.weight'],
      [/^visual\.class_embedding$/, 'embeddings.class_embedding'],
      [/^visual\.positional_embedding$/, 'embeddings.position_embedding.weight'],
      [/^visual\.ln_pre\./, 'pre_layrnorm.'],
      [/^visual\.transformer\.resblocks\.(\d+)\.ln_1\./, 'encoder.layers.$1.layer_norm1.'],
      [/^visual\.transformer\.resblocks\.(\d+)\.ln_2\./, 'encoder.layers.$1.layer_norm2.'],
      [/^visual\.transformer\.resblocks\.(\d+)\.attn\.out_proj\./, 'encoder.layers.$1.self_attn.out_proj.'],
      [/^visual\.transformer\.resblocks\.(\d+)\.mlp\.c_fc\./, 'encoder.layers.$1.mlp.fc1.'],
      [/^visual\.transformer\.resblocks\.(\d+)\.mlp\.c_proj\./, 'encoder.layers.$1.mlp.fc2.'],
    ];
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const { name, shape } of openai.list()) {
      const data = await openai.readFloat32(name);
      const packed = /^visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$/.exec(name);
      if (packed) {
        // nn.MultiheadAttention's in_proj rows: q [0, w), k [w, 2w), v [2w, 3w).
        const rows = shape[0]! / 3;
        const cols = shape.length === 2 ? shape[1]! : 1;
        ['q', 'k', 'v'].forEach((p, j) => {
          tensors[`vision_model.encoder.layers.${packed[1]}.self_attn.${p}_proj.${packed[2]}`] = {
            dtype: 'F32', shape: [rows, ...shape.slice(1)], data: data.slice(j * rows * cols, (j + 1) * rows * cols),
          };
        });
        continue;
      }
      const rule = hfName.find(([re]) => re.test(name));
      if (rule) tensors[`vision_model.${name.replace(rule[0], rule[1])}`] = { dtype: 'F32', shape, data };
    }
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const hf = await openCheckpoint(join(dir, 'model.safetensors'));
    const lavin = await openCheckpoint('test/fixtures/tiny-lavin/expected_infer.safetensors');
    const pixels = await lavin.readFloat32('s0.pixels');
    await lavin.close();
    const a = await clipHiddenStates((g) => ({ config, scope: new WeightScope(g, openai, 'visual'), naming: OPENAI_CLIP_NAMING, dtype: 'fp32' }), pixels);
    const b = await clipHiddenStates((g) => ({ config, scope: new WeightScope(g, hf, 'vision_model'), naming: HF_CLIP_NAMING, dtype: 'fp32' }), pixels);
    assert.equal(a.length, 25);
    a.forEach((s, l) => assert.ok(maxAbsDiff(s, b[l]!) <= 1e-6, `hidden state ${l}`));
    await hf.close();
  } finally {
    await openai.close();
    await rm(dir, { recursive: true, force: true });
  }
});

async function withModel(run: (model: ChatModel) => Promise<void>): Promise<void> {
  const model = await loadModel(DIR, { threads: 1 });
  try {
    await run(model);
  } finally {
    await model.dispose();
  }
}

test('LLaVA-1.5: visual tokens in place, prefill logits within 1e-4, cached greedy tokens identical', () => withModel(async (model) => {
  assert.equal(model.family, 'llava');
  assert.equal(model.defaultTemplate, 'vicuna_v1');
  for (const i of [0, 1]) {
    const ref = await sample(i);
    // The vicuna_v1 prompt tokenised LLaVA's way gives the reference's ids, -200 included.
    const ids = tokenizeImagePrompt(model.tokenizer, renderPrompt('vicuna_v1', [{ role: 'user', text: QUESTIONS[i]!, images: 1 }]));
    assert.deepEqual(ids, ref.llavaIds);
    const prompt = await model.prepare(ids, [await loadImage(IMAGES[i]!)]);
    const n = ref.inputIds.length;
    const start = ids.indexOf(IMAGE_TOKEN_INDEX);
    assert.deepEqual(prompt.positions, ref.inputIds.map((_, j) => j));
    assert.deepEqual(prompt.visual, Array.from({ length: 16 }, (_, j) => start + j));
    assert.deepEqual(prompt.textIds, ids.filter((id) => id !== IMAGE_TOKEN_INDEX));
    const visualRows = prompt.embeds.subarray(start * HIDDEN, (start + 16) * HIDDEN);
    assert.ok(maxAbsDiff(visualRows, ref.features) <= 1e-5, `sample ${i} image features`);
    // Text rows are the token embeddings (the reference's expanded ids hold 400 at the visual rows).
    const text = ref.inputIds.map((id, j) => (j >= start && j < start + 16 ? null : id));
    text.forEach((id, j) => {
      if (id !== null) assert.deepEqual(prompt.embeds.subarray(j * HIDDEN, (j + 1) * HIDDEN), model.embed([id]), `sample ${i} row ${j}`);
    });

    const cache = model.decoder.newCache(1);
    const all = prompt.positions as number[];
    const { logits } = await model.decoder.forward(cache, { embeds: prompt.embeds, seq: n, counts: [n], positions: [all], logitRows: [all] });
    assert.ok(maxAbsDiff(logits, ref.prefill) <= 1e-4, `sample ${i} prefill logits`);
    let step = logits.subarray((n - 1) * VOCAB);
    const got: number[] = [];
    for (let t = 0; t < 12; t++) {
      assert.ok(maxAbsDiff(step, ref.steps.subarray(t * VOCAB, (t + 1) * VOCAB)) <= 1e-4, `sample ${i} step ${t} logits`);
      got.push(argmax(step));
      ({ logits: step } = await model.decoder.forward(cache, { embeds: model.embed([got[t]!]), seq: 1, counts: [1], positions: [[n + t]], logitRows: [[0]] }));
    }
    assert.deepEqual(got, ref.greedyIds, `sample ${i} greedy ids`);
    const [result] = await generateAll(model, [prompt], { maxNewTokens: 12, ignoreEos: true });
    assert.deepEqual(result!.ids, ref.greedyIds, `sample ${i} generation loop`);
  }
}));

test('several images in one prompt take their visual tokens in order; mismatched counts and the <image> token id are refused', () => withModel(async (model) => {
  const [a, b] = await Promise.all(IMAGES.map((f) => loadImage(f)));
  const [refA, refB] = await Promise.all([sample(0), sample(1)]);
  const ids = [1, 13, IMAGE_TOKEN_INDEX, 13, 29, IMAGE_TOKEN_INDEX, 13];
  const check = async (images: typeof a[], expected: Float32Array[]) => {
    const prompt = await model.prepare(ids, images);
    assert.equal(prompt.positions.length, 5 + 32);
    assert.deepEqual(prompt.visual, [...Array.from({ length: 16 }, (_, j) => 2 + j), ...Array.from({ length: 16 }, (_, j) => 20 + j)]);
    assert.ok(maxAbsDiff(prompt.embeds.subarray(2 * HIDDEN, 18 * HIDDEN), expected[0]!) <= 1e-5);
    assert.ok(maxAbsDiff(prompt.embeds.subarray(20 * HIDDEN, 36 * HIDDEN), expected[1]!) <= 1e-5);
    assert.deepEqual(prompt.embeds.subarray(18 * HIDDEN, 20 * HIDDEN), model.embed([13, 29]));
    assert.deepEqual(prompt.embeds.subarray(36 * HIDDEN), model.embed([13]));
  };
  await check([a!, b!], [refA.features, refB.features]);
  await check([b!, a!], [refB.features, refA.features]);
  await check([a!, a!], [refA.features, refA.features]);
  await assert.rejects(model.prepare(ids, [a!]), (e: Error) => e instanceof InputError && /2 image placeholders .* but 1 image was given/.test(e.message));
  await assert.rejects(model.prepare([1, 13], [a!]), InputError);
  await assert.rejects(model.prepare([1, 400, 13], []), (e: Error) => e instanceof InputError && /400/.test(e.message));
}));

test('egret generate --image --prompt --json: the reference greedy ids, visual tokens counted', async () => {
  const ref = await sample(0);
  const r = egret('generate', '--model', DIR, '--image', IMAGES[0]!, '--prompt', QUESTIONS[0]!, '--max-new-tokens', '12', '--ignore-eos', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.ids, ref.greedyIds);
  assert.equal(out.stats.visual_tokens, 16);
  assert.equal(out.stats.prompt_tokens, ref.inputIds.length);
});

test('egret logits --ids with -200: logits and positions over the expanded sequence', async () => {
  const ref = await sample(1);
  const dir = await mkdtemp(join(tmpdir(), 'egret-llava-'));
  try {
    const out = join(dir, 'logits.safetensors');
    const r = egret('logits', '--model', DIR, '--image', IMAGES[1]!, '--ids', ref.llavaIds.join(','), '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const src = await openCheckpoint(out);
    const n = ref.inputIds.length;
    assert.deepEqual(src.info('logits').shape, [n, VOCAB]);
    assert.ok(maxAbsDiff(await src.readFloat32('logits'), ref.prefill) <= 1e-4);
    assert.deepEqual(Array.from(new Int32Array((await src.read('positions')).slice().buffer)), ref.inputIds.map((_, j) => j));
    await src.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('egret with images: a placeholder count mismatch and a corrupt image file exit 2 with one line', async () => {
  assertInputError(egret('logits', '--model', DIR, '--image', IMAGES[0]!, '--image', IMAGES[1]!, '--ids', '1,-200,13', '--out', join(tmpdir(), 'egret-never-written.safetensors')),
    /1 image placeholder .* but 2 images were given/);
  const dir = await mkdtemp(join(tmpdir(), 'egret-llava-'));
  try {
    const corrupt = join(dir, 'broken.png');
    await writeFile(corrupt, Buffer.from('\x89PNG\r\n\x1a\nnot really a png'));
    assertInputError(egret('generate', '--model', DIR, '--image', corrupt, '--prompt', 'What is it?', '--max-new-tokens', '2'), /broken\.png/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('egret chat --image --prompt answers in one shot', () => {
  const r = egret('chat', '--model', DIR, '--image', IMAGES[0]!, '--prompt', QUESTIONS[0]!, '--max-new-tokens', '4');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.length > 0);
});
