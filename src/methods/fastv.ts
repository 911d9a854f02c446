import { InputError } from '../errors.js';
import type { Decoder } from '../models/decoder.js';
import { prefillCall, type PreparedPrompt } from '../models/prompt.js';
import { prefillFlops } from '../models/flops.js';
import { requireTextLast } from './vtw.js';

export interface FastVOptions {
  /** Layer from which the pruned tokens are gone (FastV's K; the scores come from layer K−1). */
  layer: number;
  /** Share of visual tokens dropped (FastV's R), in [0, 1). */
  ratio: number;
}

/** Parses `K:R` as the CLI takes it (R as a fraction, e.g. 2:0.5, or a percentage, 2:50%). */
export function parseFastV(text: string): FastVOptions {
  const m = /^(\d+):(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  if (!m) throw new InputError(`--fastv must be K:R (e.g. 2:0.5 or 2:50%), got '${text}'`);
  const layer = Number(m[1]);
  const ratio = Number(m[2]) / (m[3] ? 100 : 1);
  if (layer < 1) throw new InputError(`--fastv: K must be ≥ 1 (the scores come from layer K−1), got ${layer}`);
  if (!(ratio >= 0 && ratio < 1)) throw new InputError(`--fastv: R must be in [0, 1), got ${m[2]}${m[3]}`);
  return { layer, ratio };
}

/** Python's round(): halves go to the even neighbour (FastV computes its keep count with it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * FastV's score of every visual token of each prompt: the head-mean attention it receives at layer K−1 from the
 * last prompt token, as the released code ranks them. Layers < K run on the whole prompt with only its last token
 * continuing past K (≈ K/L of a prefill).
 */
export async function fastVScores(decoder: Decoder, prompts: readonly PreparedPrompt[], layer: number): Promise<Float32Array[]> {
  const layers = decoder.config.layers;
  const probe = prompts.map((p) => rankingProbe(p, layer, layers));
  const call = prefillCall(decoder, probe);
  const attnRow = Array.from({ length: layers }, (_, i) => (i === layer - 1 ? probe.map((p) => p.positions.length - 1) : undefined));
  const { attention } = await decoder.forward(decoder.newCache(prompts.length), { ...call, attnRow });
  const { past, scores } = attention[layer - 1]!;
  const width = past + call.seq;
  return prompts.map((p, b) => Float32Array.from(p.visual, (i) => scores[b * width + past + i]!));
}

/** The ranking pass's prompt: everything up to layer K−1, then only the last position (whose attention ranks). */
function rankingProbe(p: PreparedPrompt, layer: number, layers: number): PreparedPrompt {
  return { ...p, keep: Array.from({ length: layers }, (_, i) => (i === layer ? [p.positions.length - 1] : p.keep?.[i])) };
}

/**
 * FastV (Chen et al., ECCV 2024; pkunlp-icler/FastV, the KV-cache variant): only the top round(V·(1−R)) visual
 * tokens by fastVScores stay from layer K on, with their original positions; the selection is made once, at the
 * prefill. Returns the prompts with the selection as their layer-K layout.
 */
export async function applyFastV(decoder: Decoder, prompts: readonly PreparedPrompt[], opts: FastVOptions): Promise<PreparedPrompt[]> {
  const layers = decoder.config.layers;
  if (opts.layer >= layers) throw new InputError(`--fastv: K=${opts.layer} must be below the model's ${layers} layers`);
  for (const p of prompts) {
    requireTextLast(p, 'FastV');
    if (p.keep?.slice(1, opts.layer + 1).some((k) => k !== undefined)) throw new InputError('FastV cannot be combined with another method that drops tokens at or before its layer');
  }
  const scores = await fastVScores(decoder, prompts, opts.layer);
  return prompts.map((prompt, b) => {
    // The ranking pass is part of the request's compute (stats.flops).
    const p = { ...prompt, preparationFlops: (prompt.preparationFlops ?? 0) + prefillFlops(decoder, rankingProbe(prompt, opts.layer, layers)) };
    if (p.visual.length === 0) return p;
    const keepCount = roundHalfEven(p.visual.length * (1 - opts.ratio));
    // torch.topk order: highest score first, the lower index on ties; kept rows go back in sequence order.
    const ranked = p.visual.map((_, j) => j).sort((x, y) => scores[b]![y]! - scores[b]![x]! || x - y);
    const dropped = new Set(ranked.slice(keepCount).map((j) => p.visual[j]!));
    const keep = Array.from({ length: layers }, (_, i) => p.keep?.[i]);
    keep[opts.layer] = p.positions.map((_, i) => i).filter((i) => !dropped.has(i));
    return { ...p, keep };
  });
}
