import type { Decoder } from '../models/decoder.js';
import { prefillCall, type PreparedPrompt } from '../models/prompt.js';
import { chooseWithdrawalLayer, klDivergence, withdrawVisualTokens } from './vtw.js';

export interface CalibrationOptions {
  /** First candidate K (the official script starts at 5); candidates run to L−1. */
  minLayer: number;
  eta: number;
  /** Called after each sample with the number done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Bytes of KV cache one forward call may use: candidates run as rows of one batch up to this budget. */
  cacheBudgetBytes?: number;
}

export interface CalibrationResult {
  /** The chosen K, or undefined when no candidate's mean KL is ≤ eta. */
  layer: number | undefined;
  /** Mean KL(P_vtw ‖ P_orig) of the first answer token per candidate K. */
  kl: Map<number, number>;
  eta: number;
  samples: number;
}

/**
 * The official K search (lzhxmu/VTW `--findk`): for each sample and each candidate K, the next-token distribution
 * at the last prompt position with withdrawal before K is compared with the one without, by KL(P_vtw ‖ P_orig);
 * KL is averaged over samples and the smallest K with mean ≤ eta wins. The baseline and the candidates of a
 * sample run as rows of one batch (each row withdraws at its own layer), so the search costs a few batched
 * prefills per sample instead of L separate ones.
 */
export async function calibrateVtw(decoder: Decoder, prompts: readonly PreparedPrompt[], opts: CalibrationOptions): Promise<CalibrationResult> {
  const layers = decoder.config.layers;
  const candidates = Array.from({ length: Math.max(0, layers - opts.minLayer) }, (_, i) => opts.minLayer + i);
  const sums = new Map(candidates.map((k) => [k, 0]));
  for (const [done, prompt] of prompts.entries()) {
    const rows = [prompt, ...candidates.map((k) => withdrawVisualTokens(prompt, k, layers))];
    const logits = await lastLogits(decoder, rows, opts.cacheBudgetBytes ?? 1 << 30);
    candidates.forEach((k, i) => sums.set(k, sums.get(k)! + klDivergence(logits[i + 1]!, logits[0]!)));
    opts.onProgress?.(done + 1, prompts.length);
  }
  const kl = new Map(candidates.map((k) => [k, sums.get(k)! / prompts.length]));
  return { layer: chooseWithdrawalLayer(kl, opts.eta), kl, eta: opts.eta, samples: prompts.length };
}

/** The last prompt row's logits of each prepared prompt, batched within the cache budget. */
async function lastLogits(decoder: Decoder, prompts: readonly PreparedPrompt[], budget: number): Promise<Float32Array[]> {
  const { layers, kvHeads, headDim, vocab } = decoder.config;
  const seq = prompts[0]!.positions.length;
  const rowBytes = layers * Math.max(seq, 64) * kvHeads * headDim * 8;
  const perCall = Math.max(1, Math.floor(budget / rowBytes));
  const out: Float32Array[] = [];
  for (let start = 0; start < prompts.length; start += perCall) {
    const chunk = prompts.slice(start, start + perCall);
    const { logits } = await decoder.forward(decoder.newCache(chunk.length), prefillCall(decoder, chunk));
    chunk.forEach((_, b) => out.push(logits.slice(b * vocab, (b + 1) * vocab)));
  }
  return out;
}
