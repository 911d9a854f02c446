import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { isObject, readJsonFile } from '../io/json.js';
import type { PreparedPrompt } from '../models/prompt.js';

/**
 * Visual Tokens Withdrawal (Lin et al., AAAI 2025; lzhxmu/VTW): right before decoder layer K the hidden states of
 * every visual token are dropped. The remaining tokens keep their original positions; layers ≥ K never compute,
 * cache or attend to visual tokens, in the prefill and in every decode step, while layers < K keep attending to
 * them through their caches. The visual tokens come from the prompt's own layout (`visual`), never from
 * constants like the official code's 35: any template, several images, images anywhere.
 *
 * A transformation of the prompt's runtime plan (its per-layer token layout), so it applies to every model
 * family that prepares prompts for the shared decoder.
 */
export function withdrawVisualTokens(prompt: PreparedPrompt, layer: number, layers: number): PreparedPrompt {
  if (!Number.isInteger(layer) || layer < 1 || layer > layers) throw new InputError(`VTW layer must be an integer in 1..${layers} (the model's layers), got ${layer}`);
  requireTextLast(prompt, 'VTW');
  // K = L withdraws after the last layer: the official code's no-op, identical to running without VTW.
  if (layer === layers || prompt.visual.length === 0) return prompt;
  const visual = new Set(prompt.visual);
  const kept = prompt.positions.map((_, i) => i).filter((i) => !visual.has(i));
  const keep: (readonly number[] | undefined)[] = Array.from({ length: layers }, (_, i) => prompt.keep?.[i]);
  if (keep.slice(1, layer + 1).some((k) => k !== undefined)) throw new InputError('VTW cannot be combined with a method that already drops tokens at or before its layer');
  keep[layer] = kept;
  return { ...prompt, keep };
}

/**
 * The first answer token's logits come from the prompt's last token: a method that drops visual tokens needs a
 * text token there (every official template ends with one, e.g. "ASSISTANT:").
 */
export function requireTextLast(prompt: PreparedPrompt, method: string): void {
  if (prompt.visual.length > 0 && prompt.visual[prompt.visual.length - 1] === prompt.positions.length - 1) {
    throw new InputError(`${method} needs a text token after the last image: the prompt ends with visual tokens`);
  }
}

/**
 * KL(P_vtw ‖ P_orig) = Σ p_vtw (log p_vtw − log p_orig) over the vocabulary, in float64 from float32 logits:
 * the direction of the official calibration's KLDivLoss(log_softmax(orig), softmax(vtw)).
 */
export function klDivergence(vtwLogits: ArrayLike<number>, origLogits: ArrayLike<number>): number {
  const logSoftmax = (x: ArrayLike<number>) => {
    let max = -Infinity;
    for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
    const lse = max + Math.log(sum);
    return Float64Array.from({ length: x.length }, (_, i) => x[i]! - lse);
  };
  const p = logSoftmax(vtwLogits);
  const q = logSoftmax(origLogits);
  let kl = 0;
  for (let i = 0; i < p.length; i++) kl += Math.exp(p[i]!) * (p[i]! - q[i]!);
  return kl;
}

/** The official rule: the smallest K whose mean KL is ≤ eta, or undefined when none qualifies. */
export function chooseWithdrawalLayer(meanKl: ReadonlyMap<number, number>, eta: number): number | undefined {
  return [...meanKl.keys()].sort((a, b) => a - b).find((k) => meanKl.get(k)! <= eta);
}

/**
 * The sidecar that records a model's calibrated withdrawal layer, used by default by later runs: in the model's
 * directory, or beside a LaVIN checkpoint (the layer belongs to its adapters, not to the LLaMA they adapt).
 */
export function vtwSidecarPath(modelDir: string, adapter?: string): string {
  return adapter === undefined ? join(modelDir, 'egret-vtw.json') : `${adapter}.egret-vtw.json`;
}

export interface VtwSidecar {
  layer: number;
  eta: number;
  samples: number;
  kl: Record<string, number>;
}

export async function readVtwSidecar(path: string): Promise<VtwSidecar | undefined> {
  const value = await readJsonFile(path, { optional: true });
  if (value === undefined) return undefined;
  const layer = isObject(value) ? value['layer'] : undefined;
  if (typeof layer !== 'number' || !Number.isInteger(layer) || layer < 1) throw new InputError(`${path}: 'layer' must be an integer ≥ 1`);
  return value as VtwSidecar;
}

/** Writes the sidecar atomically (temporary file + rename). */
export async function writeVtwSidecar(path: string, sidecar: VtwSidecar): Promise<string> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(sidecar, null, 1)}\n`);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new InputError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return path;
}
