// tiny-llava-hr parity (issue #4): pixel values, every intermediate of the multipath tower (ConvNeXt stages, ViT
// input and embeddings, MR-Adapter outputs and gates, fusion, visual tokens), prefill logits and cached greedy
// decoding, several images per prompt, other input sizes, and the CLI with --image. (VTW: test/vtw*.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph, type Value } from '../src/graph/ir.js';
import { WeightScope } from '../src/graph/weights.js';
import { openCheckpoint, type TensorSource } from '../src/io/checkpoint.js';
import { ort, Session } from '../src/runtime/session.js';
import { readJson } from '../src/models/llama/config.js';
import { buildMultipathVision, llavaHrConfig, visualTokenCount, vitInputSize, type LlavaHrConfig } from '../src/models/llava-hr.js';
import { alignToGrid } from '../src/models/llava-hr/mr-adapter.js';
import { CONVNEXT_LARGE, CONVNEXT_XXLARGE, type ConvNextConfig } from '../src/models/convnext.js';
import { loadModel } from '../src/models/index.js';
import { argmax } from '../src/generate/sampling.js';
import { generateAll } from '../src/generate/generate.js';
import { tokenizeImagePrompt } from '../src/text/image-prompt.js';
import { renderPrompt } from '../src/text/templates.js';
import { loadImage } from '../src/vision/decode.js';
import { preprocessLlavaHr } from '../src/vision/pipelines.js';
import type { RGBImage } from '../src/vision/image.js';
import { runGraph } from './helpers/graph.js';
import { assertInputError, egretSync } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/compare.js';

const DIR = 'test/fixtures/tiny-llava-hr';
const NAMES = ['wide', 'tall'] as const;
const VOCAB = 400;

async function fixtureConfig(inputImageSize?: number): Promise<LlavaHrConfig> {
  const cfg = await readJson(`${DIR}/config.json`);
  return llavaHrConfig(inputImageSize ? { ...cfg, input_image_size: inputImageSize } : cfg, `${DIR}/config.json`);
}


async function withExpected<T>(run: (ref: TensorSource) => Promise<T>): Promise<T> {
  const ref = await openCheckpoint(`${DIR}/expected.safetensors`);
  try {
    return await run(ref);
  } finally {
    await ref.close();
  }
}

const ints = async (ref: TensorSource, name: string) => {
  const bytes = (await ref.read(name)).slice();
  return ref.info(name).dtype === 'I64' ? Array.from(new BigInt64Array(bytes.buffer), Number) : Array.from(new Int32Array(bytes.buffer));
};

const image = (name: string): Promise<RGBImage> => loadImage(`${DIR}/images/${name}.png`);

/** Runs the multipath tower on pixels [1, 3, S, S], returning the named intermediates. */
async function runTower(config: LlavaHrConfig, source: TensorSource, pixels: Float32Array, pick: (v: ReturnType<typeof buildMultipathVision>) => Record<string, Value>): Promise<Record<string, Float32Array>> {
  const graph = new Graph('llava-hr-tower');
  const S = config.inputImageSize;
  const input = graph.input('pixel_values', 'float32', [1, 3, S, S]);
  const outputs = pick(buildMultipathVision(new WeightScope(graph, source), config, input));
  for (const [name, value] of Object.entries(outputs)) graph.output(value, name);
  const session = await Session.fromGraph(graph, { threads: 1 });
  try {
    const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) });
    return Object.fromEntries(Object.keys(outputs).map((name) => [name, out[name]!.data as Float32Array]));
  } finally {
    await session.dispose();
  }
}

test('LLaVA-HR preprocessing: pixel_u8 exact and pixel_values within 1e-6 at S = 128', async () => {
  const config = await fixtureConfig();
  await withExpected(async (ref) => {
    for (const name of NAMES) {
      const { image: u8, pixelValues } = preprocessLlavaHr(await image(name), config.inputImageSize);
      assert.deepEqual(Buffer.from(u8.data), Buffer.from(await ref.read(`${name}.pixel_u8`)), `${name} pixel_u8`);
      assert.ok(maxAbsDiff(pixelValues, await ref.readFloat32(`${name}.pixel_values`)) <= 1e-6, `${name} pixel_values`);
    }
  });
});

test('multipath tower: every recorded intermediate within 1e-4 (ViT input and table, ConvNeXt stages, adapters and gates, fusion, visual tokens)', async () => {
  const config = await fixtureConfig();
  assert.equal(vitInputSize(config), 56);
  const source = await openCheckpoint(DIR);
  try {
    await withExpected(async (ref) => {
      for (const name of NAMES) {
        const got = await runTower(config, source, await ref.readFloat32(`${name}.pixel_values`), (v) => ({
          vit_input: v.vitInput,
          vit_pos_table: v.vitPositionTable,
          vit_embeddings: v.vitEmbeddings,
          ...Object.fromEntries(v.convnextStages.map((s, i) => [`convnext_stage${i}`, s])),
          ...Object.fromEntries(v.afterAdapters.map((s, i) => [`vit_after_adapter${i}`, s])),
          ...Object.fromEntries(v.gatesTanh.map((s, i) => [`adapter${i}_gate_tanh`, s])),
          vit_final: v.vitFinal,
          fused_features: v.fused,
          visual_tokens: v.visualTokens,
        }));
        assert.equal(Object.keys(got).length, 16);
        for (const [key, data] of Object.entries(got)) {
          const diff = maxAbsDiff(data, await ref.readFloat32(`${name}.${key}`));
          assert.ok(diff <= 1e-4, `${name}.${key}: max |Δ| ${diff}`);
        }
        // torch's float32 coordinate recipe: the ViT input agrees to float32 rounding, not just to 1e-4.
        assert.ok(maxAbsDiff(got['vit_input']!, await ref.readFloat32(`${name}.vit_input`)) <= 1e-6, `${name}.vit_input bit-level`);
      }
    });
  } finally {
    await source.close();
  }
});

test('LLaVA-HR model: the prompt tokenises to input_ids, visual tokens in place, prefill logits within 1e-4, cached greedy ids and step logits', async () => {
  const model = await loadModel(DIR, { threads: 1 });
  const expected = await readJson(`${DIR}/expected.json`);
  try {
    assert.equal(model.family, 'llava-hr');
    await withExpected(async (ref) => {
      for (const [n, name] of NAMES.entries()) {
        const record = (expected['images'] as Record<string, unknown>[])[n]!;
        const inputIds = await ints(ref, `${name}.input_ids`);
        const ids = tokenizeImagePrompt(model.tokenizer, renderPrompt('vicuna_v1', [{ role: 'user', text: record['question'] as string, images: 1 }]));
        assert.deepEqual(ids, inputIds, `${name} input_ids`);
        const prompt = await model.prepare(ids, [await image(name)]);
        const start = record['image_token_start'] as number;
        assert.deepEqual(prompt.visual, Array.from({ length: 16 }, (_, i) => start + i));
        assert.deepEqual(prompt.positions, await ints(ref, `${name}.positions`));
        assert.ok(maxAbsDiff(prompt.embeds, await ref.readFloat32(`${name}.inputs_embeds`)) <= 1e-4, `${name} inputs_embeds`);
        const T = prompt.positions.length;
        const all = prompt.positions.map((_, i) => i);
        const prefill = await model.decoder.forward(model.decoder.newCache(1), { embeds: prompt.embeds, seq: T, counts: [T], positions: [prompt.positions], logitRows: [all] });
        const prefillDiff = maxAbsDiff(prefill.logits, await ref.readFloat32(`${name}.prefill_logits`));
        assert.ok(prefillDiff <= 1e-4, `${name} prefill logits: max |Δ| ${prefillDiff}`);
        // Greedy decoding through the KV cache, each step's logits against the reference's.
        const generated = await ints(ref, `${name}.generated_ids`);
        const steps = await ref.readFloat32(`${name}.decode_logits`);
        const cache = model.decoder.newCache(1);
        let { logits } = await model.decoder.forward(cache, { embeds: prompt.embeds, seq: T, counts: [T], positions: [prompt.positions], logitRows: [[T - 1]] });
        const got: number[] = [];
        for (let t = 0; t < generated.length; t++) {
          assert.ok(maxAbsDiff(logits, steps.subarray(t * VOCAB, (t + 1) * VOCAB)) <= 1e-4, `${name} step ${t} logits`);
          got.push(argmax(logits));
          ({ logits } = await model.decoder.forward(cache, { embeds: model.embed([got[t]!]), seq: 1, counts: [1], positions: [[T + t]], logitRows: [[0]] }));
        }
        assert.deepEqual(got, generated, `${name} greedy ids`);
        const [result] = await generateAll(model, [prompt], { maxNewTokens: generated.length, ignoreEos: true });
        assert.deepEqual(result!.ids, generated, `${name} generateAll ids`);
      }
    });
  } finally {
    await model.dispose();
  }
});

test('several images in one prompt: each image\'s visual tokens at its own placeholder, in order; a count mismatch is refused', async () => {
  const model = await loadModel(DIR, { threads: 1 });
  try {
    await withExpected(async (ref) => {
      const ids = tokenizeImagePrompt(model.tokenizer, renderPrompt('vicuna_v1', [{ role: 'user', text: 'Compare them.', images: 2 }]));
      const prompt = await model.prepare(ids, [await image('wide'), await image('tall')]);
      assert.equal(prompt.visual.length, 32);
      const hidden = 64;
      for (const [k, name] of NAMES.entries()) {
        const first = prompt.visual[16 * k]!;
        assert.deepEqual(prompt.visual.slice(16 * k, 16 * (k + 1)), Array.from({ length: 16 }, (_, i) => first + i));
        const rows = prompt.embeds.subarray(first * hidden, (first + 16) * hidden);
        assert.ok(maxAbsDiff(rows, await ref.readFloat32(`${name}.visual_tokens`)) <= 1e-4, `image ${k} (${name})`);
      }
      await assert.rejects(model.prepare(ids, [await image('wide')]), /2 image placeholders .*but 1 image was given/);
    });
  } finally {
    await model.dispose();
  }
});

test('input_image_size 384, 768, 1024 and 1536 build (position table resampled, visual token counts); small sizes run, with the ConvNeXt map upsampled at 64', async () => {
  const source = await openCheckpoint(DIR);
  try {
    for (const [S, tokens] of [[384, 144], [768, 576], [1024, 1024], [1536, 2304]] as const) {
      const config = await fixtureConfig(S);
      assert.equal(visualTokenCount(config), tokens, `S = ${S}`);
      const graph = new Graph('sizes');
      const v = buildMultipathVision(new WeightScope(graph, source), config, graph.input('pixel_values', 'float32', [1, 3, S, S]));
      assert.deepEqual(v.visualTokens.shape, [1, tokens, 64], `S = ${S}`);
      assert.deepEqual(v.vitPositionTable.shape, [1 + tokens, 48], `S = ${S}`);
    }
    // At 64 the ViT is clamped to its 56-pixel input (4×4 grid) while the ConvNeXt map is 2×2: upsampled ×2.
    for (const S of [64, 384]) {
      const config = await fixtureConfig(S);
      const pixels = preprocessLlavaHr(await image('wide'), S).pixelValues;
      const out = await runTower(config, source, pixels, (v) => ({ tokens: v.visualTokens, table: v.vitPositionTable }));
      assert.equal(out['tokens']!.length, visualTokenCount(config) * 64, `S = ${S}`);
      assert.ok(out['tokens']!.every(Number.isFinite), `S = ${S}`);
      if (S === 384) {
        // The 4×4 grid part of the table resampled to 12×12 as torch's antialiased bicubic does (README formula).
        const stored = await source.readFloat32('model.vision_tower.fast_vision_tower.vision_tower.vision_model.embeddings.position_embedding.weight');
        assert.ok(maxAbsDiff(out['table']!, resampledTable(stored, 4, 12, 48)) <= 1e-5);
      }
    }
  } finally {
    await source.close();
  }
});

/**
 * A checkpoint that has only names and shapes: the released models' tensors (research dossier §2.3) for building
 * their graphs without their gigabytes. Reading any tensor fails.
 */
function shapesOnly(convnext: ConvNextConfig, llmHidden: number): TensorSource {
  const shapes = new Map<string, number[]>();
  const clip = 'model.vision_tower.fast_vision_tower.vision_tower.vision_model.';
  shapes.set(`${clip}embeddings.class_embedding`, [1024]);
  shapes.set(`${clip}embeddings.patch_embedding.weight`, [1024, 3, 14, 14]);
  shapes.set(`${clip}embeddings.position_embedding.weight`, [577, 1024]);
  for (const ln of ['pre_layrnorm', 'post_layernorm']) for (const p of ['weight', 'bias']) shapes.set(`${clip}${ln}.${p}`, [1024]);
  for (let i = 0; i < 24; i++) {
    const l = `${clip}encoder.layers.${i}.`;
    for (const m of ['q', 'k', 'v', 'out']) { shapes.set(`${l}self_attn.${m}_proj.weight`, [1024, 1024]); shapes.set(`${l}self_attn.${m}_proj.bias`, [1024]); }
    for (const n of ['layer_norm1', 'layer_norm2']) for (const p of ['weight', 'bias']) shapes.set(`${l}${n}.${p}`, [1024]);
    shapes.set(`${l}mlp.fc1.weight`, [4096, 1024]); shapes.set(`${l}mlp.fc1.bias`, [4096]);
    shapes.set(`${l}mlp.fc2.weight`, [1024, 4096]); shapes.set(`${l}mlp.fc2.bias`, [1024]);
  }
  const cnx = 'model.vision_tower.slow_vision_tower.vision_tower.';
  const { dims, depths } = convnext;
  shapes.set(`${cnx}stem.0.weight`, [dims[0]!, 3, 4, 4]);
  for (const n of ['stem.0.bias', 'stem.1.weight', 'stem.1.bias']) shapes.set(cnx + n, [dims[0]!]);
  dims.forEach((c, s) => {
    const st = `${cnx}stages.${s}.`;
    if (s > 0) {
      for (const p of ['weight', 'bias']) shapes.set(`${st}downsample.0.${p}`, [dims[s - 1]!]);
      shapes.set(`${st}downsample.1.weight`, [c, dims[s - 1]!, 2, 2]); shapes.set(`${st}downsample.1.bias`, [c]);
    }
    for (let j = 0; j < depths[s]!; j++) {
      const b = `${st}blocks.${j}.`;
      shapes.set(`${b}conv_dw.weight`, [c, 1, 7, 7]);
      for (const n of ['conv_dw.bias', 'norm.weight', 'norm.bias', 'mlp.fc2.bias', 'weight']) shapes.set(b + n, [c]);
      shapes.set(`${b}mlp.fc1.weight`, [4 * c, c]); shapes.set(`${b}mlp.fc1.bias`, [4 * c]); shapes.set(`${b}mlp.fc2.weight`, [c, 4 * c]);
    }
  });
  const cs = dims.at(-1)!;
  for (let a = 0; a < 3; a++) {
    const m = `model.vision_tower.align_stages_latent.${a}.`;
    shapes.set(`${m}slow_conv.weight`, [cs, cs, 1, 1]); shapes.set(`${m}slow_conv.bias`, [cs]);
    shapes.set(`${m}slow_proj.weight`, [1024, cs, 1, 1]); shapes.set(`${m}slow_proj.bias`, [1024]);
    shapes.set(`${m}fast_conv.weight`, [1024, 1, 7, 7]); shapes.set(`${m}fast_conv.bias`, [1024]);
    shapes.set(`${m}fast_proj.weight`, [1024, 1024, 1, 1]); shapes.set(`${m}fast_proj.bias`, [1024]);
    shapes.set(`${m}gate.0.weight`, [512, 2048]); shapes.set(`${m}gate.0.bias`, [512]);
    shapes.set(`${m}gate.2.weight`, [1, 512]); shapes.set(`${m}gate.2.bias`, [1]);
  }
  const f = 'model.vision_tower.align_stages.0.';
  shapes.set(`${f}fast_proj.weight`, [1024, 1024]); shapes.set(`${f}fast_proj.bias`, [1024]);
  shapes.set(`${f}slow_proj.weight`, [1024, cs]); shapes.set(`${f}slow_proj.bias`, [1024]);
  shapes.set('model.mm_projector.0.weight', [llmHidden, 1024]); shapes.set('model.mm_projector.0.bias', [llmHidden]);
  shapes.set('model.mm_projector.2.weight', [llmHidden, llmHidden]); shapes.set('model.mm_projector.2.bias', [llmHidden]);
  const info = (name: string) => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`no tensor '${name}'`);
    return { name, dtype: 'BF16' as const, shape };
  };
  return {
    format: 'pytorch',
    list: () => [...shapes.keys()].map(info),
    has: (name) => shapes.has(name),
    info,
    read: () => Promise.reject(new Error('shapes only')),
    readFloat32: () => Promise.reject(new Error('shapes only')),
    close: () => Promise.resolve(),
  };
}

test('the released geometries (config by tower names): LLaVA-HR-7B and -X towers build at 384, 768, 1024 and 1536 with the dossier\'s token counts', async () => {
  const release = {
    ...(await readJson(`${DIR}/config.json`)),
    hidden_size: 4096, mm_hidden_size: 1024, mm_vision_tower: 'openai/clip-vit-large-patch14-336',
    mm_vision_tower_config: undefined, vision_tower_slow_config: undefined,
  };
  for (const [slow, convnext, channels] of [['convnext_large_mlp.clip_laion2b_ft_320', CONVNEXT_LARGE, 1536], ['convnext_xxlarge.clip_laion2b_soup', CONVNEXT_XXLARGE, 3072]] as const) {
    const source = shapesOnly(convnext, 4096);
    // S → ViT input R, tokens, ConvNeXt grid: 384 is clamped to the ViT's 336 and its 12×12 map upsampled to 24×24.
    for (const [S, R, tokens, grid] of [[384, 336, 576, 12], [768, 336, 576, 24], [1024, 448, 1024, 32], [1536, 672, 2304, 48]] as const) {
      const config = llavaHrConfig({ ...release, vision_tower_slow: slow, input_image_size: S }, 'release config.json');
      assert.deepEqual(config.convnext, convnext);
      assert.equal(vitInputSize(config), R);
      assert.equal(visualTokenCount(config), tokens);
      const graph = new Graph('release');
      const v = buildMultipathVision(new WeightScope(graph, source), config, graph.input('pixel_values', 'float32', [1, 3, S, S]));
      assert.deepEqual(v.convnextStages.at(-1)!.shape, [1, channels, grid, grid]);
      assert.deepEqual(v.visualTokens.shape, [1, tokens, 4096], `${slow} at ${S}`);
      assert.equal(v.gatesTanh.length, 3);
    }
  }
  assert.throws(() => llavaHrConfig({ ...release, mm_vision_tower: 'openai/clip-vit-base-patch16' }, 'c.json'), /c\.json: mm_vision_tower 'openai\/clip-vit-base-patch16' is not a known tower/);
  assert.throws(() => llavaHrConfig({ ...release, vision_tower_slow: 'x', mm_projector_type: 'linear' }, 'c.json'), /mm_projector_type 'linear' is not supported/);
  // Below 768 the ViT stays at 336 px (24×24): the ConvNeXt's grid (S/32) must divide 24.
  assert.throws(() => llavaHrConfig({ ...release, input_image_size: 500 }, 'c.json'),
    /c\.json: input_image_size 500 gives a 15×15 ConvNeXt map that cannot be aligned to the 24×24 ViT grid/);
  // Stage-1 models (freeze_vision true) have no MR-Adapters: the fusion alone joins the paths.
  const stage1 = llavaHrConfig({ ...release, freeze_vision: true }, 'c.json');
  const graph = new Graph('stage1');
  const v = buildMultipathVision(new WeightScope(graph, shapesOnly(CONVNEXT_LARGE, 4096)), stage1, graph.input('pixel_values', 'float32', [1, 3, 384, 384]));
  assert.deepEqual([v.gatesTanh.length, v.afterAdapters.length], [0, 0]);
});

/** torch F.interpolate(bicubic, antialias=True, align_corners=False) of a table's grid part, as the fixture README states it. */
function resampledTable(table: Float32Array, from: number, to: number, width: number): Float32Array {
  const cubic = (x: number) => {
    const a = -0.5, t = Math.abs(x);
    return t < 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : t < 2 ? (((t - 5) * t + 8) * t - 4) * a : 0;
  };
  const weights = (i: number): [number, number][] => {
    const scale = from / to, support = 2 * Math.max(scale, 1), centre = scale * (i + 0.5);
    const taps: [number, number][] = [];
    for (let j = Math.max(Math.trunc(centre - support + 0.5), 0); j < Math.min(Math.trunc(centre + support + 0.5), from); j++) {
      taps.push([j, cubic((j - centre + 0.5) / Math.max(scale, 1))]);
    }
    const sum = taps.reduce((s, [, w]) => s + w, 0);
    return taps.map(([j, w]) => [j, w / sum]);
  };
  const out = new Float32Array((1 + to * to) * width);
  out.set(table.subarray(0, width));
  for (let y = 0; y < to; y++) for (let x = 0; x < to; x++) for (let c = 0; c < width; c++) {
    let v = 0;
    for (const [sy, wy] of weights(y)) for (const [sx, wx] of weights(x)) v += wy * wx * table[(1 + sy * from + sx) * width + c]!;
    out[(1 + y * to + x) * width + c] = v;
  }
  return out;
}

test('alignToGrid: average pooling when the map has more cells than the ViT grid, align-corners upsampling when fewer', async () => {
  const map = Float32Array.from({ length: 2 * 16 }, (_, i) => Math.sin(i));
  const [[pooled, upsampled]] = await runGraph({ x: { shape: [1, 2, 4, 4] } }, (_, { x }) => [alignToGrid(x!, 2), alignToGrid(x!, 8)], [{ x: { data: map, shape: [1, 2, 4, 4] } }]);
  const at = (c: number, y: number, x: number) => map[c * 16 + y * 4 + x]!;
  const expectPooled = Float32Array.from({ length: 8 }, (_, i) => {
    const [c, y, x] = [Math.floor(i / 4), Math.floor(i / 2) % 2, i % 2];
    return (at(c, 2 * y, 2 * x) + at(c, 2 * y, 2 * x + 1) + at(c, 2 * y + 1, 2 * x) + at(c, 2 * y + 1, 2 * x + 1)) / 4;
  });
  assert.ok(maxAbsDiff(pooled!.data, expectPooled) <= 1e-6);
  const expectUp = Float32Array.from({ length: 2 * 64 }, (_, i) => {
    const [c, y, x] = [Math.floor(i / 64), Math.floor(i / 8) % 8, i % 8];
    const [sy, sx] = [(y * 3) / 7, (x * 3) / 7];
    const [y0, x0] = [Math.floor(sy), Math.floor(sx)];
    const [y1, x1] = [Math.min(y0 + 1, 3), Math.min(x0 + 1, 3)];
    const [fy, fx] = [sy - y0, sx - x0];
    return (1 - fy) * ((1 - fx) * at(c, y0, x0) + fx * at(c, y0, x1)) + fy * ((1 - fx) * at(c, y1, x0) + fx * at(c, y1, x1));
  });
  assert.ok(maxAbsDiff(upsampled!.data, expectUp) <= 1e-6);
  assert.throws(() => {
    const g = new Graph('bad');
    alignToGrid(g.input('x', 'float32', [1, 2, 3, 3]), 2);
  }, /3×3 high-resolution map cannot be aligned to the 2×2 ViT grid/);
});

test('egret generate --image: the reference greedy ids, and chat the same answer; egret logits --image: the prefill logits; an image without a placeholder is refused', async () => {
  const expected = await readJson(`${DIR}/expected.json`);
  const record = (expected['images'] as Record<string, unknown>[])[0]!;
  const r = egretSync('generate', '--model', DIR, '--image', `${DIR}/images/wide.png`, '--prompt', record['question'] as string,
    '--max-new-tokens', '12', '--ignore-eos', '--json', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.ids, record['generated_ids']);
  assert.equal(out.stats.visual_tokens, 16);
  assert.equal(out.stats.prompt_tokens, 145);
  // egret chat's one-shot answer (vicuna_v1, greedy) is the same text.
  const chat = egretSync('chat', '--model', DIR, '--image', `${DIR}/images/wide.png`, '--prompt', record['question'] as string,
    '--max-new-tokens', '12', '--ignore-eos', '--threads', '1');
  assert.equal(chat.code, 0, chat.stderr);
  assert.equal(chat.stdout.trim(), out.text.trim());
  const question = (expected['images'] as Record<string, unknown>[])[1]!['question'] as string;
  const dir = await mkdtemp(join(tmpdir(), 'egret-llava-hr-'));
  try {
    const file = join(dir, 'logits.safetensors');
    const logits = egretSync('logits', '--model', DIR, '--image', `${DIR}/images/tall.png`, '--prompt', question, '--out', file, '--threads', '1');
    assert.equal(logits.code, 0, logits.stderr);
    const got = await openCheckpoint(file);
    const diff = await withExpected(async (ref) => maxAbsDiff(await got.readFloat32('logits'), await ref.readFloat32('tall.prefill_logits')));
    await got.close();
    assert.ok(diff <= 1e-4, `egret logits: max |Δ| ${diff}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assertInputError(egretSync('generate', '--model', DIR, '--image', `${DIR}/images/wide.png`, '--ids', '1,2,3', '--max-new-tokens', '1', '--threads', '1'),
    /0 image placeholders.*1 image was given/);
});
