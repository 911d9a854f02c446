import type { Value } from '../ir.js';
import { fail, sameDim } from '../shape.js';
import { add, mul, neg, scalar, where } from './elementwise.js';
import { matmul } from './linear.js';
import { softmax } from './nn.js';
import { concat, slice, transpose } from './tensor.js';

/** Splits the last dim in halves and returns concat(-x2, x1) (transformers' rotate_half). */
export function rotateHalf(x: Value): Value {
  const d = x.dim(-1);
  if (typeof d !== 'number' || d % 2) fail('RotaryEmbedding', [x], 'head dim must be a known even number');
  const half = d / 2;
  const x1 = slice(x, [-1], [0], [half]);
  const x2 = slice(x, [-1], [half], [d]);
  return concat([neg(x2), x1], -1);
}

/**
 * Rotary position embedding in the rotate-half layout (HF LLaMA): x·cos + rotate_half(x)·sin, with cos/sin
 * broadcastable to x (e.g. [batch, 1, seq, head_dim] against [batch, heads, seq, head_dim]). Meta's interleaved
 * layout is turned into this one by permuting wq/wk at load (models/), not by a second kernel.
 */
export function rotary(x: Value, cos: Value, sin: Value): Value {
  return add(mul(x, cos), mul(rotateHalf(x), sin));
}

export interface AttentionOptions {
  /** Additive mask broadcastable to [batch, heads, q, k]: 0 where attention is allowed, a large negative elsewhere. */
  mask?: Value;
  /** Boolean mask broadcastable to [batch, heads, q, k]: true where attention is allowed. */
  allowed?: Value;
  /** Score scale, default 1/√head_dim. */
  scale?: number;
}

/**
 * Scaled dot-product attention over q [B, H, S, D], k [B, H, T, D], v [B, H, T, Dv] → [B, H, S, Dv].
 * Returns the probabilities as well: FastV ranks tokens by the attention they receive.
 */
export function attentionWithProbs(q: Value, k: Value, v: Value, opts: AttentionOptions = {}): { out: Value; probs: Value } {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) fail('Attention', [q, k, v], 'q, k, v must be [batch, heads, seq, dim]');
  if (sameDim(q.dim(-1), k.dim(-1)) === false) fail('Attention', [q, k], 'q and k head dims differ');
  if (sameDim(k.dim(2), v.dim(2)) === false) fail('Attention', [k, v], 'k and v lengths differ');
  const headDim = q.dim(-1);
  if (opts.scale === undefined && typeof headDim !== 'number') fail('Attention', [q], 'head dim must be known');
  const scale = opts.scale ?? 1 / Math.sqrt(headDim as number);
  let scores = mul(matmul(q, transpose(k, [0, 1, 3, 2])), scale);
  if (opts.mask) scores = add(scores, opts.mask);
  if (opts.allowed) scores = where(opts.allowed, scores, scalar(scores, -Infinity));
  const probs = softmax(scores, -1);
  return { out: matmul(probs, v), probs };
}

export function attention(q: Value, k: Value, v: Value, opts: AttentionOptions = {}): Value {
  return attentionWithProbs(q, k, v, opts).out;
}
