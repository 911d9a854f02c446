/**
 * Suite `mra` (issue #4, not quick: two random models in os.tmpdir(), about 0.8 GB, a few minutes): the MRA claim
 * of "Feast Your Eyes" (LLaVA-HR at 1024 px runs 3.5× faster than LLaVA-1.5 at 1022 px: 19.7 vs 5.6 generated
 * tokens/s, paper Table 1) at proportional, smaller shapes. Both models share one random LLaMA and keep the
 * geometry that sets their costs apart, the number of visual tokens and the towers' resolutions:
 *
 *   LLaVA-HR     ViT/14 on a 448-px copy (32×32 = 1024 visual tokens) + ConvNeXt on the 1024-px image, MRA
 *                adapters and fusion (its original layout: config.json with is_multipath_encoder)
 *   LLaVA-1.5    the same ViT/14 at 1022 px (73×73 = 5329 visual tokens), llava-hf layout
 *
 * Every network is narrowed 4× (LLaMA hidden 4096 → 1024, ViT-L width 1024 → 256, ConvNeXt-L dims ÷ 4) and
 * shortened (LLaMA 32 → 2 layers, ViT 24 → 4, ConvNeXt-L depths 3,3,27,3 → 1,1,4,1); head dims stay 128 (LLaMA)
 * and 64 (ViT), MLP ratios stay. Narrowing makes attention, quadratic in tokens, a larger share of each layer
 * than at full width, and the cut LLM a smaller share of the whole: the report gives the FLOPs ratio of these
 * shapes beside that of the full-size models, from the same FLOPs functions.
 *
 * Measured in the same rounds, interleaved: time to first token of each model for one 1280×960 image and a short
 * question (preprocessing, vision tower, prefill of the spliced prompt and the first token's argmax), split into
 * its parts; the towers' GFLOP/s against raw ORT MatMuls (hand-made sessions, matmul.ts) of the shape that
 * dominates each tower: the ViT's MLP fc1 over 5330 tokens for LLaVA-1.5, the ConvNeXt's stages.2 MLP fc1 for LLaVA-HR.
 *
 * Options: --layers=N (LLaMA layers, default 2).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { identityLayout } from '../graph/weights.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { convnextGrid } from '../models/convnext.js';
import { decoderFlops, llavaHrVisionFlops, llavaVisionFlops } from '../models/flops.js';
import { llavaHrConfig, LlavaHrVision, visualTokenCount, type LlavaHrConfig } from '../models/llava-hr.js';
import { buildLlavaVisionGraph, llavaConfigFromHf, type LlavaConfig } from '../models/llava.js';
import { readJson, type LlamaConfig } from '../models/llama/config.js';
import { prefixedLayout } from '../models/llama/layout.js';
import { CausalLM } from '../models/llama/load.js';
import { prefillCall } from '../models/prompt.js';
import { spliceVisualTokens } from '../models/visual-prompt.js';
import { argmax } from '../generate/sampling.js';
import { ort, Session } from '../runtime/session.js';
import { IMAGE_TOKEN_INDEX } from '../text/image-prompt.js';
import type { RGBImage } from '../vision/image.js';
import { preprocessLlavaPad } from '../vision/pipelines.js';
import { interleave, summarize, type Report, type Stats, type Suite, type SuiteContext } from './harness.js';
import { baselineSession, randomFloats, type Shape3 } from './matmul.js';
import type { RandomLlamaShape } from './random-llama.js';
import {
  llava15ConfigJson, llavaHrConfigJson, randomLlava15Dir, randomLlavaHrDir, type ConvNextShape, type Llava15Shape, type LlavaHrShape, type VitShape,
} from './random-llava.js';

/** LLaMA-7B narrowed 4× (head dim 128 kept); layers from --layers. */
const LLM: Omit<RandomLlamaShape, 'layers'> = { hidden: 1024, intermediate: 2752, heads: 8, vocab: 32000 };
/** CLIP ViT-L/14 narrowed 4× (head dim 64 kept), 4 layers: one per MRA group. */
const VIT: Omit<VitShape, 'imageSize'> = { hidden: 256, heads: 4, mlp: 1024, layers: 4 };
/** ConvNeXt-L (convnext_large_mlp) narrowed 4× and shortened. */
const CONVNEXT: ConvNextShape = { depths: [1, 1, 4, 1], dims: [48, 96, 192, 384] };

/** The released models' shapes: LLaMA-7B (Vicuna-7B), ViT-L/14-336, ConvNeXt-L. */
const FULL_LLM: RandomLlamaShape = { hidden: 4096, intermediate: 11008, heads: 32, layers: 32, vocab: 32000 };
const FULL_VIT: Omit<VitShape, 'imageSize'> = { hidden: 1024, heads: 16, mlp: 4096, layers: 24 };
const FULL_CONVNEXT: ConvNextShape = { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536] };

const HR_INPUT = 1024;
/** LLaVA-HR's ViT is CLIP-336: its position table is resampled to the 448-px grid on every forward. */
const HR_VIT_TABLE = 336;
const LLAVA15_INPUT = 1022;
const PAPER_SPEEDUP = 3.5;
const RAW_PRODUCTS = 8;
const REPS = 7;

/** vicuna_v1 prompt proportions: BOS + system + " USER: " before the image, a short question + " ASSISTANT:" after. */
const BEFORE_IMAGE = 35;
const AFTER_IMAGE = 15;

const hrShape = (llm: RandomLlamaShape, vit: typeof VIT, convnext: ConvNextShape): LlavaHrShape =>
  ({ llm, vit: { ...vit, imageSize: HR_VIT_TABLE }, convnext, inputImageSize: HR_INPUT });
const llava15Shape = (llm: RandomLlamaShape, vit: typeof VIT): Llava15Shape => ({ llm, vit: { ...vit, imageSize: LLAVA15_INPUT } });

function promptIds(vocab: number): number[] {
  const text = (n: number, from: number) => Array.from({ length: n }, (_, i) => ((from + i) * 7919) % vocab);
  return [1, ...text(BEFORE_IMAGE - 1, 1), IMAGE_TOKEN_INDEX, ...text(AFTER_IMAGE, BEFORE_IMAGE)];
}

/** Prefill FLOPs of the prompt with `visual` tokens (fresh cache, one logits row). */
function prefillFlops(llm: LlamaConfig, visual: number): number {
  const n = BEFORE_IMAGE + visual + AFTER_IMAGE;
  const tokens = Array<number>(llm.layers).fill(n);
  return decoderFlops(llm, tokens, tokens, 1);
}

const hrFlops = (c: LlavaHrConfig, mlp: number) => ({ tower: llavaHrVisionFlops(c, mlp, visualTokenCount(c)), prefill: prefillFlops(c.llm, visualTokenCount(c)) });
const llava15Flops = (c: LlavaConfig, mlp: number) => {
  const visual = (c.vision.imageSize / c.vision.patchSize) ** 2;
  return { tower: llavaVisionFlops(c, mlp), prefill: prefillFlops(c.text, visual) };
};

/** A model as the first token needs it: pixels from an image, visual tokens from pixels, and its LLM. */
interface Model {
  visualTokens: number;
  lm: CausalLM;
  preprocess(image: RGBImage): Float32Array;
  tower(pixels: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

async function loadHr(dir: string, threads: number): Promise<{ config: LlavaHrConfig; model: Model }> {
  const config = llavaHrConfig(await readJson(join(dir, 'config.json')), dir);
  const source = await openCheckpoint(dir);
  const vision = await LlavaHrVision.build(config, source, { threads });
  const lm = await CausalLM.build({ config: config.llm, source, layout: identityLayout }, { threads });
  await source.close();
  return {
    config,
    model: {
      visualTokens: visualTokenCount(config), lm,
      preprocess: (image) => vision.preprocess(image),
      tower: (pixels) => vision.encodePixels(pixels),
      dispose: async () => { await Promise.all([vision.dispose(), lm.dispose()]); },
    },
  };
}

async function loadLlava15(dir: string, threads: number): Promise<{ config: LlavaConfig; model: Model }> {
  const config = llavaConfigFromHf(await readJson(join(dir, 'config.json')), dir);
  const source = await openCheckpoint(dir);
  const vision = await Session.fromGraph(buildLlavaVisionGraph(config, source), { threads });
  const lm = await CausalLM.build({ config: config.text, source, layout: prefixedLayout('language_model.') }, { threads });
  await source.close();
  const size = config.vision.imageSize;
  return {
    config,
    model: {
      visualTokens: (size / config.vision.patchSize) ** 2, lm,
      preprocess: (image) => preprocessLlavaPad(image, size).pixelValues,
      tower: async (pixels) => (await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]) }))['image_features']!.data as Float32Array,
      dispose: async () => { await Promise.all([vision.dispose(), lm.dispose()]); },
    },
  };
}

/** A deterministic 1280×960 photo-sized image (smooth gradients and texture; content does not change the cost). */
function testImage(): RGBImage {
  const [width, height] = [1280, 960];
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x ^ y) * 7) & 255;
    }
  }
  return { width, height, data };
}

interface Split { preprocess: number; tower: number; prefill: number }

/** Time to first token of `model` for one image, its parts pushed to `splits` (one entry per call). */
function firstToken(model: Model, image: RGBImage, ids: readonly number[], splits: Split[]): () => Promise<number> {
  const { lm } = model;
  return async () => {
    const t0 = performance.now();
    const pixels = model.preprocess(image);
    const t1 = performance.now();
    const visual = await model.tower(pixels);
    const t2 = performance.now();
    const prompt = spliceVisualTokens(ids, (text) => lm.embed(text), [visual], lm.config.hidden);
    const { logits } = await lm.decoder.forward(lm.decoder.newCache(1), prefillCall(lm.decoder, [prompt]));
    const token = argmax(logits.subarray(0, lm.config.vocab));
    splits.push({ preprocess: t1 - t0, tower: t2 - t1, prefill: performance.now() - t2 });
    return token;
  };
}

/**
 * RAW_PRODUCTS products of a hand-made ORT session per call, and their FLOPs: one product takes tens of ms, too
 * short to stand for a round on shared cores by itself.
 */
async function rawMatMul(shape: Shape3, threads: number): Promise<{ shape: Shape3; flops: number; run: () => Promise<void> }> {
  const { m, k, n } = shape;
  const session = await baselineSession(shape, randomFloats(k * n, 7), threads);
  const x = new ort.Tensor('float32', randomFloats(m * k, 11), [m, k]);
  return {
    shape, flops: RAW_PRODUCTS * 2 * m * k * n,
    async run() { for (let i = 0; i < RAW_PRODUCTS; i++) await session.run({ x }); },
  };
}

const ratioStats = (a: readonly number[], b: readonly number[]): Stats => summarize(a.map((v, i) => v / b[i]!));

export const mraSuite: Suite = {
  name: 'mra',
  description: 'LLaVA-HR (1024 px, 1024 visual tokens) vs LLaVA-1.5 at 1022 px (5329) on one LLM: time to first token, towers vs raw MatMul',
  quick: false,
  options: { layers: 'LLaMA layers (default 2)' },
  async run(ctx: SuiteContext): Promise<Report> {
    const layers = Number(ctx.options['layers'] ?? 2);
    if (!Number.isInteger(layers) || layers < 1) throw new Error('--layers needs a positive integer');
    const llm = { ...LLM, layers };
    const [hrDir, llava15Dir] = [await randomLlavaHrDir(hrShape(llm, VIT, CONVNEXT), ctx.log), await randomLlava15Dir(llava15Shape(llm, VIT), ctx.log)];
    ctx.log('building the sessions');
    const hr = await loadHr(hrDir, ctx.threads);
    const l15 = await loadLlava15(llava15Dir, ctx.threads);
    // stages.2 (most of ConvNeXt-L's blocks) runs at twice the final grid's side.
    const stage2Cells = (2 * convnextGrid(hr.config.convnext, HR_INPUT)) ** 2;
    const raw = {
      vit: await rawMatMul({ m: l15.model.visualTokens + 1, k: VIT.hidden, n: VIT.mlp }, ctx.threads),
      convnext: await rawMatMul({ m: stage2Cells, k: CONVNEXT.dims[2]!, n: 4 * CONVNEXT.dims[2]! }, ctx.threads),
    };
    const image = testImage();
    const ids = promptIds(llm.vocab);
    const splits = { hr: [] as Split[], llava15: [] as Split[] };
    const warmup = ctx.warmup ?? 1;
    ctx.log(`timing (${warmup} warm-up + ${ctx.reps ?? REPS} rounds of: LLaVA-HR, LLaVA-1.5, two raw MatMuls)`);
    const m = await interleave({
      hr: firstToken(hr.model, image, ids, splits.hr),
      llava15: firstToken(l15.model, image, ids, splits.llava15),
      rawVit: raw.vit.run,
      rawConvnext: raw.convnext.run,
    }, { warmup, reps: ctx.reps ?? REPS, pauseMs: 20 });
    await Promise.all([hr.model.dispose(), l15.model.dispose()]);

    const timed = { hr: splits.hr.slice(warmup), llava15: splits.llava15.slice(warmup) };
    const part = (key: 'hr' | 'llava15', p: keyof Split) => timed[key].map((s) => s[p]);
    const rounds = (key: 'hr' | 'llava15' | 'rawVit' | 'rawConvnext') => m.rounds.map((r) => r[key]);
    const flops = { hr: hrFlops(hr.config, VIT.mlp), llava15: llava15Flops(l15.config, VIT.mlp) };
    const rawFlops = { rawVit: raw.vit.flops, rawConvnext: raw.convnext.flops };
    const reference = { hr: 'rawConvnext', llava15: 'rawVit' } as const;

    const modelRow = (key: 'hr' | 'llava15', name: string) => {
      const tower = part(key, 'tower');
      const gflops = (f: number, ms: readonly number[]) => f / 1e6 / summarize(ms).median;
      // Per round: the tower's GFLOP/s over its reference MatMul's, both timed in that round.
      const ref = reference[key];
      const vsRaw = summarize(tower.map((t, i) => (flops[key].tower / t) / (rawFlops[ref] / rounds(ref)[i]!)));
      return {
        row: name, visual: { hr, llava15: l15 }[key].model.visualTokens,
        preprocess_ms: summarize(part(key, 'preprocess')).median, tower_ms: summarize(tower).median,
        prefill_ms: summarize(part(key, 'prefill')).median, ttft_ms: m.times[key].median,
        tower_gflop: flops[key].tower / 1e9, tower_gflops: gflops(flops[key].tower, tower), tower_vs_raw: vsRaw.median,
        prefill_gflop: flops[key].prefill / 1e9, prefill_gflops: gflops(flops[key].prefill, part(key, 'prefill')),
      };
    };
    const ratio = (p: keyof Split) => ratioStats(part('llava15', p), part('hr', p)).median;
    const ttftRatio = ratioStats(rounds('llava15'), rounds('hr'));
    const rawRow = (key: 'rawVit' | 'rawConvnext', what: string) => {
      const { m: rows, k, n } = raw[key === 'rawVit' ? 'vit' : 'convnext'].shape;
      const perProduct = m.times[key].median / RAW_PRODUCTS;
      return { row: `raw MatMul ${rows}×${k}·${k}×${n} (${what})`, tower_ms: perProduct, tower_gflops: rawFlops[key] / 1e6 / m.times[key].median };
    };
    const totalFlops = (f: { tower: number; prefill: number }) => f.tower + f.prefill;
    const benchFlopRatio = totalFlops(flops.llava15) / totalFlops(flops.hr);
    const fullHr = hrFlops(llavaHrConfig(llavaHrConfigJson(hrShape(FULL_LLM, FULL_VIT, FULL_CONVNEXT)), 'full-size LLaVA-HR'), FULL_VIT.mlp);
    const full15 = llava15Flops(llavaConfigFromHf(llava15ConfigJson(llava15Shape(FULL_LLM, FULL_VIT)), 'full-size LLaVA-1.5'), FULL_VIT.mlp);
    const fullFlopRatio = totalFlops(full15) / totalFlops(fullHr);
    const share = (f: { tower: number; prefill: number }) => `${((f.tower / totalFlops(f)) * 100).toFixed(0)} %`;

    return {
      title: `time to first token, one image + a ${BEFORE_IMAGE}+${AFTER_IMAGE}-token prompt, shared LLaMA ${layers} layers × hidden ${llm.hidden}, ViT width ${VIT.hidden} × ${VIT.layers} layers, ConvNeXt dims ${CONVNEXT.dims.join('/')} depths ${CONVNEXT.depths.join('/')}`,
      columns: [
        { key: 'row', label: '' }, { key: 'visual', label: 'visual tokens', digits: 0 },
        { key: 'preprocess_ms', label: 'preprocess ms', digits: 1 }, { key: 'tower_ms', label: 'tower ms', digits: 1 },
        { key: 'prefill_ms', label: 'prefill ms', digits: 1 }, { key: 'ttft_ms', label: 'TTFT ms', digits: 1 },
        { key: 'tower_gflop', label: 'tower GFLOP', digits: 1 }, { key: 'tower_gflops', label: 'tower GFLOP/s', digits: 1 },
        { key: 'tower_vs_raw', label: 'of raw MatMul', digits: 2 },
        { key: 'prefill_gflop', label: 'prefill GFLOP', digits: 1 }, { key: 'prefill_gflops', label: 'prefill GFLOP/s', digits: 1 },
      ],
      rows: [
        modelRow('hr', `LLaVA-HR ${HR_INPUT} px`),
        modelRow('llava15', `LLaVA-1.5 ${LLAVA15_INPUT} px`),
        {
          row: 'LLaVA-1.5 / LLaVA-HR (paired)',
          preprocess_ms: ratio('preprocess'), tower_ms: ratio('tower'), prefill_ms: ratio('prefill'), ttft_ms: ttftRatio.median,
          tower_gflop: flops.llava15.tower / flops.hr.tower, prefill_gflop: flops.llava15.prefill / flops.hr.prefill,
        },
        rawRow('rawVit', 'LLaVA-1.5 tower reference'),
        rawRow('rawConvnext', 'LLaVA-HR tower reference'),
      ],
      notes: [
        `time to first token: LLaVA-HR ${ttftRatio.median.toFixed(2)}× faster than LLaVA-1.5 at 1022 px (paired rounds, quartiles ${ttftRatio.p25.toFixed(2)}–${ttftRatio.p75.toFixed(2)}); the paper reports ${PAPER_SPEEDUP}× in generated tokens/s (19.7 vs 5.6, A800, 10 new tokens)`,
        `FLOPs ratio (towers + prefill) at these shapes: ${benchFlopRatio.toFixed(2)}× (towers ${share(flops.hr)} of LLaVA-HR's, ${share(flops.llava15)} of LLaVA-1.5's); at the released 7B shapes: ${fullFlopRatio.toFixed(2)}× (towers ${share(fullHr)} and ${share(full15)})`,
        'ratio row: per-round LLaVA-1.5 / LLaVA-HR of each part (medians); GFLOP columns: LLaVA-1.5 / LLaVA-HR FLOPs',
        `"of raw MatMul": the tower's GFLOP/s over that of its reference MatMul in the same round (ViT MLP fc1 over LLaVA-1.5's ${raw.vit.shape.m} tokens; ConvNeXt stages.2 MLP fc1 at 1024 px for LLaVA-HR)`,
        `raw MatMul rows: ms per product (each round times ${RAW_PRODUCTS} in a row)`,
        'preprocessing (pad to square, Pillow-exact bicubic to the model size, normalise) is in TTFT; splicing, the first token\'s argmax are in prefill',
      ],
      details: { rounds: m.rounds, splits: timed, flops: { bench: flops, full: { hr: fullHr, llava15: full15 } } },
    };
  },
};
