/**
 * AdamW as graph ops, with torch.optim.AdamW's semantics (torch/optim/adamw.py, single-tensor path):
 *   p ← p · (1 − lr·wd)                      decoupled decay, only for tensors that decay
 *   m ← m + (g − m)·(1 − β₁)                 (exp_avg.lerp_)
 *   v ← v·β₂ + g²·(1 − β₂)
 *   p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
 * with t the update's 1-based count. lr and t are graph inputs, so schedules need no new graph.
 */
import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';

export interface AdamWOptions {
  /** Default 0.9 and 0.999, torch's. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Default 0.01, torch's. */
  weightDecay?: number;
  /** Whether a tensor decays; default timm's rule (decaysByDefault). */
  decays?: (name: string, shape: readonly number[]) => boolean;
}

/**
 * timm's param_groups_weight_decay (timm/optim/optim_factory.py), which LaVIN's train.py uses: no decay for
 * tensors of rank ≤ 1 or whose name ends in `.bias`.
 */
export function decaysByDefault(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && !name.endsWith('.bias');
}

/** The per-update scalars every tensor's update shares, computed once in the graph from lr and the step count. */
export interface AdamWScalars {
  /** 1 − lr·wd. */
  decay: Value;
  /** lr / (1 − β₁ᵗ). */
  stepSize: Value;
  /** √(1 − β₂ᵗ). */
  correction2: Value;
}

export function adamwScalars(lr: Value, step: Value, opts: AdamWOptions): AdamWScalars {
  const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
  const one = op.scalar(lr, 1);
  const correction = (beta: number) => op.sub(one, op.pow(op.scalar(step, beta), step));
  return {
    decay: op.sub(one, op.mul(lr, opts.weightDecay ?? 0.01)),
    stepSize: op.div(lr, correction(beta1)),
    correction2: op.sqrt(correction(beta2)),
  };
}

/** One AdamW update of a tensor `p` with gradient `g` and moments `m`, `v`. */
export function adamwUpdate(p: Value, g: Value, m: Value, v: Value, s: AdamWScalars, decays: boolean, opts: AdamWOptions): { p: Value; m: Value; v: Value } {
  const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
  const m2 = op.add(m, op.mul(op.sub(g, m), 1 - beta1));
  const v2 = op.add(op.mul(v, beta2), op.mul(op.mul(g, g), 1 - beta2));
  const denom = op.add(op.div(op.sqrt(v2), s.correction2), opts.eps ?? 1e-8);
  const decayed = decays ? op.mul(p, s.decay) : p;
  return { p: op.sub(decayed, op.mul(s.stepSize, op.div(m2, denom))), m: m2, v: v2 };
}

/**
 * torch.nn.utils.clip_grad_norm_ over all `grads` together: the global 2-norm, and the gradients scaled by
 * min(1, maxNorm / (norm + 1e-6)).
 */
export function clipByGlobalNorm(grads: readonly Value[], maxNorm: number): { grads: Value[]; norm: Value } {
  const norm = globalNorm(grads);
  const coef = op.minimum(op.div(op.scalar(norm, maxNorm), op.add(norm, 1e-6)), 1);
  return { grads: grads.map((g) => op.mul(g, coef)), norm };
}

/** √(Σ over every tensor of Σ g²). */
export function globalNorm(grads: readonly Value[]): Value {
  const squares = grads.map((g) => op.reduceSum(op.mul(g, g), g.shape.map((_, i) => i), false));
  const total = squares.length === 1 ? squares[0]! : squares[0]!.graph.node('Sum', squares, [{ type: squares[0]!.type, shape: [] }])[0]!;
  return op.sqrt(total);
}
