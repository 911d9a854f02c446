// tiny-llava15 parity (issue #4): CLIP hidden states in both weight namings, LLaVA-1.5 pixel values, visual
// tokens, prefill logits and cached greedy decoding, and the CLI with images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../src/graph/ir.js';
import { WeightScope } from '../src/graph/weights.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { ort, Session } from '../src/runtime/session.js';
import {
  clipEmbeddings, clipEncoderLayer, clipPreLayerNorm, clipVisionConfigFromHf, HF_CLIP_NAMING, type ClipTower,
} from '../src/models/clip.js';
import { readJson } from '../src/models/llama/config.js';

const DIR = 'test/fixtures/tiny-llava15';

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

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
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
