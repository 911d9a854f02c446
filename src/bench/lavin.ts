/**
 * Suite `lavin` (issue #10, not quick: the 2-layer random LLaMA of the `llama` suite, ~2.7 GB in os.tmpdir(), twice in
 * memory): what LaVIN's MM-Adapters cost at inference over the same LLaMA without them — the paper's point is that
 * they are nearly free — and what VTW saves on LaVIN's prompts. A random LLaMA with 7B's layer shapes (hidden 4096,
 * intermediate 11008, 32 heads, 2 layers, 32000-token vocabulary) and a random LaVIN checkpoint for it (adapter
 * dim 8, 2 groups, temperature 10, routes and up-projections non-zero), contenders interleaved in the same rounds:
 *
 *   prefill   a ScienceQA-sized prompt (BOS, "Image: ", 6 visual tokens, question text: --prompt tokens, default
 *             160) and a 512-token one, fresh cache: LaVIN's decoder / the plain LLaMA's
 *   decode    one step over the prompt's cache: LaVIN / plain
 *   vtw       LaVIN's prefill with the 6 visual tokens withdrawn before layer 1 / without; its FLOPs ratio beside
 *
 * Options: --dtypes=fp32,q4, --prompt=N; --model=DIR --clip=FILE --adapter=FILE measure a LaVIN of one's own instead.
 */
import { mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpointFile } from '../io/checkpoint.js';
import { tensor, torchSave, type SavedValue } from '../io/torch-save.js';
import { decoderFlops, promptLayerTokens } from '../models/flops.js';
import { buildLavinDecoder } from '../models/lavin/load.js';
import { lavinSettings } from '../models/lavin/settings.js';
import { lavinClipConfig } from '../models/lavin/vision.js';
import type { ComputeDtype } from '../models/linear.js';
import { CausalLM, openLlama } from '../models/llama/load.js';
import { prefillCall, type PreparedPrompt } from '../models/prompt.js';
import { withdrawVisualTokens } from '../methods/vtw.js';
import type { Decoder } from '../models/decoder.js';
import { interleave, pairedRatio, type Report, type Suite, type SuiteContext } from './harness.js';
import { LLAMA_7B_LAYER, normals, randomLlamaDir } from './random-llama.js';

const LAYERS = 2;
const VOCAB = 32000;
const VISUAL = 6;
/** BOS + "Image: " (3 tokens in LLaMA's vocabulary) before the visual tokens. */
const PREFIX = 4;

/**
 * A random LaVIN checkpoint for a LLaMA of `width` and `layers` (LLaMA adapters, modality embedding, projector for a
 * CLIP of width 1024, args), with the router adapters of `clipLayers` CLIP blocks when training needs them.
 */
export async function randomLavinCheckpoint(width: number, layers: number, log: (m: string) => void, clipLayers = 0): Promise<string> {
  const path = join(tmpdir(), `egret-bench-lavin-w${width}-l${layers}${clipLayers ? `-clip${clipLayers}` : ''}.pth`);
  if (await stat(path).then(() => true, () => false)) return path;
  log(`writing a random LaVIN checkpoint to ${path}`);
  await mkdir(tmpdir(), { recursive: true });
  let seed = 777;
  const random = (shape: number[], std: number) => tensor('F32', shape, normals(shape.reduce((a, b) => a * b, 1), seed++, std));
  const model: Record<string, SavedValue> = {};
  const adapter = (p: string, c: number) => Object.assign(model, {
    [`${p}.conv_A.weight`]: random([8, c, 1], Math.sqrt(2 / (c + 8))), [`${p}.conv_A.bias`]: random([8], 0.01),
    [`${p}.conv_B.weight`]: random([c, 4, 1], 0.02), [`${p}.conv_B.bias`]: random([c], 0.01),
    [`${p}.conv_D.weight`]: random([c, 4, 1], 0.02), [`${p}.conv_D.bias`]: random([c], 0.01),
    [`${p}.expert_weights.weight`]: random([2, c], 1 / Math.sqrt(c)), [`${p}.expert_weights.bias`]: random([2], 0.1),
  });
  for (let i = 0; i < layers; i++) adapter(`module.layers.${i}.adapter_attn`, width);
  Object.assign(model, {
    'module.adapter_proj.conv_A.weight': random([128, 1024], 0.03), 'module.adapter_proj.conv_A.bias': random([128], 0.01),
    'module.adapter_proj.conv_B.weight': random([width, 128], 0.03), 'module.adapter_proj.conv_B.bias': random([width], 0.01),
    'module.adapter_modality_embedding.weight': random([2, width], 1),
  });
  // After the others, so that the inference suite's tensors keep their values.
  for (let i = 0; i < clipLayers; i++) adapter(`module.backbone.visual.transformer.resblocks.${i}.adapter_attn`, 1024);
  const args = { adapter_type: 'attn', visual_adapter_type: 'router', adapter_dim: 8, hidden_proj: 128, temperature: 10, n_prompt: 6, adapter_scale: 1, max_seq_len: 512 };
  await torchSave(path, { model: { kind: 'ordered', entries: model }, epoch: 19, args: { kind: 'namespace', fields: args } });
  return path;
}

/** A LaVIN-shaped prompt of `n` rows: BOS, "Image: ", 6 visual tokens, text. Positions from `first`. */
function lavinPrompt(lm: CausalLM, n: number, first: number, conditioning?: Float32Array): PreparedPrompt {
  const ids = Array.from({ length: n }, (_, i) => (i * 7919) % lm.config.vocab);
  const embeds = lm.embed(ids);
  embeds.set(normals(VISUAL * lm.config.hidden, 99, 0.02), PREFIX * lm.config.hidden);
  const visual = Array.from({ length: VISUAL }, (_, i) => PREFIX + i);
  return { embeds, positions: ids.map((_, i) => i + first), textIds: ids, visual, ...(conditioning ? { conditioning } : {}) };
}

/** The CLIP tower's width and depth, which LaVIN's settings are checked against. */
async function clipDimensions(file: string): Promise<{ clipWidth: number; clipLayers: number }> {
  const clip = await openCheckpointFile(file);
  try {
    const config = await lavinClipConfig(clip, file);
    return { clipWidth: config.hidden, clipLayers: config.layers };
  } finally {
    await clip.close();
  }
}

const prefill = (decoder: Decoder, p: PreparedPrompt) => () => decoder.forward(decoder.newCache(1), prefillCall(decoder, [p]));

/** One decode step over `p`'s cache, rewound after each call so that every call is the same step. */
async function stepper(decoder: Decoder, p: PreparedPrompt): Promise<() => Promise<unknown>> {
  const cache = decoder.newCache(1);
  await decoder.forward(cache, prefillCall(decoder, [p]));
  const next = p.positions.at(-1)! + 1;
  const embeds = p.embeds.subarray(0, decoder.config.hidden);
  return async () => {
    await decoder.forward(cache, { embeds, seq: 1, counts: [1], positions: [[next]], logitRows: [[0]] });
    cache.lengths.forEach((l) => (l[0]! -= 1));
  };
}

export const lavinSuite: Suite = {
  name: 'lavin',
  description: "LaVIN's MM-Adapters vs the same LLaMA without them (prefill, decode), and VTW on LaVIN, 7B layer shapes",
  quick: false,
  options: {
    dtypes: 'compute dtypes (default fp32,q4)', prompt: 'ScienceQA-sized prompt length (default 160)',
    model: "a LaVIN's LLaMA directory instead of the random model (with --clip and --adapter)", clip: "the LaVIN's CLIP file", adapter: "the LaVIN's checkpoint",
  },
  async run(ctx: SuiteContext): Promise<Report> {
    const dtypes = String(ctx.options['dtypes'] ?? 'fp32,q4').split(',') as ComputeDtype[];
    if (dtypes.some((d) => !['fp32', 'q8', 'q4'].includes(d))) throw new Error('--dtypes takes fp32, q8, q4');
    const short = Number(ctx.options['prompt'] ?? 160);
    if (!Number.isInteger(short) || short <= PREFIX + VISUAL) throw new Error(`--prompt needs an integer > ${PREFIX + VISUAL}`);
    // A user's LaVIN (--model=DIR --clip=FILE --adapter=FILE), or the random one with LLaMA-7B's layer shapes.
    const own = ['model', 'clip', 'adapter'].filter((k) => ctx.options[k] !== undefined);
    if (own.length !== 0 && own.length !== 3) throw new Error('--model, --clip and --adapter go together (a LaVIN model)');
    const dir = own.length ? String(ctx.options['model']) : await randomLlamaDir({ ...LLAMA_7B_LAYER, layers: LAYERS, vocab: VOCAB }, ctx.log);
    const checkpointPath = own.length ? String(ctx.options['adapter']) : await randomLavinCheckpoint(LLAMA_7B_LAYER.hidden, LAYERS, ctx.log);
    const clipDims = own.length ? await clipDimensions(String(ctx.options['clip'])) : { clipWidth: 1024, clipLayers: 24 };
    const rows: Report['rows'] = [];
    const notes: string[] = [];
    for (const dtype of dtypes) {
      const plainWeights = await openLlama(dir);
      const plain = await CausalLM.build(plainWeights, { threads: ctx.threads, dtype });
      await plainWeights.source.close();
      const weights = await openLlama(dir);
      const adapters = await openCheckpointFile(checkpointPath);
      const settings = lavinSettings(adapters, checkpointPath, { llmWidth: weights.config.hidden, ...clipDims });
      const { lm, modality } = await buildLavinDecoder(weights, adapters, settings, checkpointPath, { threads: ctx.threads, dtype });
      await Promise.all([weights.source.close(), adapters.close()]);
      try {
        for (const n of [short, 512]) {
          ctx.log(`lavin ${dtype}: ${n}-token prompts`);
          const plainPrompt = lavinPrompt(plain, n, 0);
          const lavinPromptN = lavinPrompt(lm, n, 1, modality.routes[1]);
          const vtw = withdrawVisualTokens(lavinPromptN, 1, lm.config.layers);
          const times = await interleave({
            plainPrefill: prefill(plain.decoder, plainPrompt),
            lavinPrefill: prefill(lm.decoder, lavinPromptN),
            vtwPrefill: prefill(lm.decoder, vtw),
            plainStep: await stepper(plain.decoder, plainPrompt),
            lavinStep: await stepper(lm.decoder, lavinPromptN),
          }, { reps: ctx.reps ?? 7, warmup: ctx.warmup ?? 2 });
          const flops = (p: PreparedPrompt) => {
            const t = promptLayerTokens(lm.decoder, p);
            return decoderFlops(lm.config, t, t, 1);
          };
          rows.push({
            dtype, prompt: n,
            plainPrefillMs: times.times.plainPrefill.median, lavinPrefill: pairedRatio(times, 'lavinPrefill', 'plainPrefill').median,
            plainStepMs: times.times.plainStep.median, lavinStep: pairedRatio(times, 'lavinStep', 'plainStep').median,
            vtwTime: pairedRatio(times, 'vtwPrefill', 'lavinPrefill').median, vtwFlops: flops(vtw) / flops(lavinPromptN),
          });
        }
      } finally {
        await Promise.all([plain.dispose(), lm.dispose()]);
      }
    }
    notes.push('lavinPrefill, lavinStep: LaVIN time / plain LLaMA time in the same rounds (1.0 = the adapters are free)');
    notes.push('vtwTime: LaVIN prefill with the 6 visual tokens withdrawn before layer 1 / without; vtwFlops: the same ratio of decoder FLOPs');
    notes.push(own.length ? `the LaVIN of ${dir} with ${checkpointPath}` : `2 layers of LLaMA-7B shapes, vocabulary ${VOCAB}`);
    notes.push('the CLIP tower is not timed (it runs once per image, before the prefill)');
    return {
      title: "LaVIN's MM-Adapters over the plain LLaMA, and VTW on LaVIN's prompts (ratios, medians of paired rounds)",
      columns: [
        { key: 'dtype' }, { key: 'prompt', digits: 0 },
        { key: 'plainPrefillMs', label: 'plain prefill ms', digits: 1 }, { key: 'lavinPrefill', label: 'LaVIN/plain prefill', digits: 3 },
        { key: 'plainStepMs', label: 'plain step ms', digits: 1 }, { key: 'lavinStep', label: 'LaVIN/plain step', digits: 3 },
        { key: 'vtwTime', label: 'VTW/none time', digits: 3 }, { key: 'vtwFlops', label: 'VTW/none FLOPs', digits: 3 },
      ],
      rows,
      notes,
    };
  },
};
