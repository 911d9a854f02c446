import { Graph, type Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import type { WeightScope } from '../../graph/weights.js';
import { linear, stackedLinear, type ComputeDtype } from '../linear.js';
import type { LlamaConfig } from './config.js';

/**
 * The graph's interface. Every layer i has its own token layout, so that a method can drop tokens before any
 * layer (VTW withdraws visual tokens before layer K) while the others keep theirs:
 *   keep.i       int64 [batch, seq_i]   (i ≥ 1) rows of layer i-1's tokens that layer i computes
 *   positions.i  int64 [batch, seq_i]   RoPE positions of layer i's tokens
 *   mask.i       float32 [batch, 1, seq_i, past_i + seq_i]   additive: 0 allowed, a large negative not
 *   past_k.i / past_v.i  float32 [batch, kv_heads, past_i, head_dim]   the layer's cache (masked beyond each row's length)
 *   → new_k.i / new_v.i  [batch, kv_heads, seq_i, head_dim]   this call's keys (after RoPE) and values
 * The caller writes new keys into its cache: the graph never copies the cache. Layers sharing a layout get the
 * same tensors; keeping every row costs one gather of the hidden states.
 * inputs_embeds float32 [batch, seq_0, hidden]; logit_index int64 [batch, n] (rows of the last layer's tokens)
 * → logits float32 [batch, n, vocab].
 * attn_row.i int64 [batch] → attn.i float32 [batch, past_i + seq_i]: the head-mean attention of that query row of
 * layer i over its keys (FastV ranks visual tokens by it, as the released code does). Layers sharing a layout
 * share the row tensor; the cost is one row of probabilities per layer.
 */
export interface DecoderGraphOptions {
  dtype: ComputeDtype;
  /**
   * A transformation of layer `layer`'s attention input (the attention_norm output), for models that adapt it:
   * LaVIN's MM-Adapter sits there (lavin/model.py TransformerBlock, adapter_type 'attn').
   */
  attentionInput?: (x: Value, layer: number) => Value;
  /** The decoder's input rows, when the graph computes them (LaVIN's training graph); default the input `inputs_embeds`. */
  embeds?: Value;
  /**
   * A graph for whole sequences without a cache, as training runs it: one `positions` [batch, seq] and one `mask`
   * [batch, 1, seq, seq] for every layer, attention over the call's own keys, logits for every row, and none of
   * the cache's or the methods' inputs and outputs (no backward pass through empty caches and unused rows).
   */
  wholeSequence?: boolean;
  /**
   * Whole-sequence graphs: called with each layer's attention logits [batch, heads, seq, seq] (scaled scores plus
   * the mask, before the softmax), for training aids that supervise where a head looks.
   */
  onAttentionLogits?: (logits: Value, layer: number) => void;
  /** Whole-sequence graphs: called with each layer's output rows [batch, seq, hidden], for training aids that probe them. */
  onLayerOutput?: (h: Value, layer: number) => void;
}

/** HF's inv_freq: 1 / θ^(2j/d) for j < d/2 (transformers LlamaRotaryEmbedding), rounded to float32. */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, j) => 1 / Math.fround(theta ** Math.fround((2 * j) / headDim)));
}

/** The decoder graph of a LLaMA model whose weights are named in `scope` with HF names (see layout.ts). */
export function buildDecoderGraph(config: LlamaConfig, scope: WeightScope, opts: DecoderGraphOptions): Graph {
  const g = scope.graph;
  const { hidden, heads, kvHeads, headDim, rmsEps } = config;
  const invFreq = g.constant('float32', [headDim / 2], ropeInverseFrequencies(headDim, config.ropeTheta), 'inv_freq');
  let h = opts.embeds ?? g.input('inputs_embeds', 'float32', ['batch', 'seq.0', hidden]);
  const model = scope.at('model');
  const whole = opts.wholeSequence ? { rope: ropeTables(g.input('positions', 'int64', ['batch', 'seq']), invFreq), mask: g.input('mask', 'float32', ['batch', 1, 'seq', 'seq']) } : undefined;
  for (let i = 0; i < config.layers; i++) {
    if (i > 0 && !whole) h = op.gatherND(h, op.unsqueeze(g.input(`keep.${i}`, 'int64', ['batch', `seq.${i}`]), [-1]), 1);
    const rope = whole?.rope ?? ropeTables(g.input(`positions.${i}`, 'int64', ['batch', `seq.${i}`]), invFreq);
    const mask = whole?.mask ?? g.input(`mask.${i}`, 'float32', ['batch', 1, `seq.${i}`, `total.${i}`]);
    const layer = model.at('layers').at(i);
    const normed = op.rmsNorm(h, layer.weight('input_layernorm.weight'), rmsEps);
    const x = opts.attentionInput ? opts.attentionInput(normed, i) : normed;
    const attn = layer.at('self_attn');
    const [qx, kx, vx] = stackedLinear(attn, ['q_proj.weight', 'k_proj.weight', 'v_proj.weight'], x, opts.dtype) as [Value, Value, Value];
    // The attention scale 1/√d goes into the queries' RoPE tables ([batch, 1, seq, d]): not a pass over the scores
    // (seq × total, 16× more values at 2000 tokens), and not a scalar Mul next to the product either, which ORT
    // folds into FusedMatMul's alpha, where MLAS loses its single-row kernels and packs the whole cache each step.
    const scale = 1 / Math.sqrt(headDim);
    const q = op.rotary(splitHeads(qx, heads, headDim), op.mul(rope.cos, scale), op.mul(rope.sin, scale));
    const k = op.rotary(splitHeads(kx, kvHeads, headDim), rope.cos, rope.sin);
    const v = splitHeads(vx, kvHeads, headDim);
    let o: Value;
    if (whole) {
      const self = selfAttention(q, k, v, mask, heads / kvHeads);
      opts.onAttentionLogits?.(self.logits, i);
      o = self.out;
    } else {
      g.output(k, `new_k.${i}`);
      g.output(v, `new_v.${i}`);
      const past = {
        k: g.input(`past_k.${i}`, 'float32', ['batch', kvHeads, `past.${i}`, headDim]),
        v: g.input(`past_v.${i}`, 'float32', ['batch', kvHeads, `past.${i}`, headDim]),
      };
      const cached = cachedAttention(q, k, v, past, mask, heads / kvHeads, g.input(`attn_row.${i}`, 'int64', ['batch']));
      g.output(cached.rowAttention, `attn.${i}`);
      o = cached.out;
    }
    h = op.add(h, linear(attn, 'o_proj.weight', mergeHeads(o, heads * headDim), opts.dtype));
    const y = op.rmsNorm(h, layer.weight('post_attention_layernorm.weight'), rmsEps);
    const mlp = layer.at('mlp');
    const [gate, up] = stackedLinear(mlp, ['gate_proj.weight', 'up_proj.weight'], y, opts.dtype) as [Value, Value];
    const act = op.mul(op.silu(gate), up);
    h = op.add(h, linear(mlp, 'down_proj.weight', act, opts.dtype));
    if (whole) opts.onLayerOutput?.(h, i);
  }
  const picked = whole ? h : op.gatherND(h, op.unsqueeze(g.input('logit_index', 'int64', ['batch', 'n']), [-1]), 1);
  const rows = op.rmsNorm(picked, model.weight('norm.weight'), rmsEps);
  const head = config.tiedEmbeddings ? linear(model, 'embed_tokens.weight', rows, opts.dtype) : linear(scope, 'lm_head.weight', rows, opts.dtype);
  g.output(head, 'logits');
  return g;
}

/** cos/sin [batch, 1, seq, head_dim] of positions · inv_freq, duplicated over both halves (rotate-half layout). */
function ropeTables(positions: Value, invFreq: Value): { cos: Value; sin: Value } {
  const angles = op.mul(op.unsqueeze(op.cast(positions, 'float32'), [-1]), invFreq);
  const full = op.unsqueeze(op.concat([angles, angles], -1), [1]);
  return { cos: op.cos(full), sin: op.sin(full) };
}

/** [batch, seq, heads·dim] → [batch, heads, seq, dim]. */
function splitHeads(x: Value, heads: number, dim: number): Value {
  return op.transpose(op.reshape(x, [0, 0, heads, dim]), [0, 2, 1, 3]);
}

/** [batch, heads, seq, dim] → [batch, seq, heads·dim]. */
function mergeHeads(x: Value, width: number): Value {
  return op.reshape(op.transpose(x, [0, 2, 1, 3]), [0, 0, width]);
}

/**
 * Attention of this call's queries (already scaled by 1/√d) over the cached keys followed by this call's own keys, without concatenating
 * keys or values: scores against both are concatenated (their size is seq × total, not total × head_dim), and the
 * output is P_past · V_past + P_new · V_new. Grouped-query attention shares each KV head among `rep` query heads
 * (transformers repeat_kv) by folding those heads into the rows of the product instead of repeating K and V.
 */
function cachedAttention(q: Value, kNew: Value, vNew: Value, past: { k: Value; v: Value }, mask: Value, rep: number, row: Value): { out: Value; rowAttention: Value } {
  const [, heads, , headDim] = q.shape as [unknown, number, unknown, number];
  const kvHeads = heads / rep;
  // [batch, heads, seq, d] → [batch, kv_heads, rep·seq, d]: heads h = j·rep + r are consecutive.
  const qg = op.reshape(q, [0, kvHeads, -1, headDim]);
  const scores = op.concat([
    op.matmul(qg, op.transpose(past.k, [0, 1, 3, 2])),
    op.matmul(qg, op.transpose(kNew, [0, 1, 3, 2])),
  ], -1);
  // Back to one row per (head, query) to add the [batch, 1, seq, total] mask, as transformers' eager attention does.
  const perHead = op.add(op.reshape(scores, [0, heads, -1, 0]), mask);
  const perHeadProbs = op.softmax(perHead, -1);
  const probs = op.reshape(perHeadProbs, [0, kvHeads, -1, 0]);
  const pastLen = op.slice(op.shapeOf(past.k), [0], [2], [3]);
  const out = op.add(
    op.matmul(op.slice(probs, [-1], [0], pastLen), past.v),
    op.matmul(op.slice(probs, [-1], pastLen, [undefined]), vNew),
  );
  return { out: op.reshape(out, [0, heads, -1, headDim]), rowAttention: headMeanRow(perHeadProbs, row) };
}

/**
 * Attention of a whole sequence's queries (scaled) over its own keys, grouped-query heads folded as in
 * cachedAttention; `logits` are the masked scores [batch, heads, seq, seq] before the softmax.
 */
function selfAttention(q: Value, k: Value, v: Value, mask: Value, rep: number): { out: Value; logits: Value } {
  const [, heads, , headDim] = q.shape as [unknown, number, unknown, number];
  const scores = op.matmul(op.reshape(q, [0, heads / rep, -1, headDim]), op.transpose(k, [0, 1, 3, 2]));
  const logits = op.add(op.reshape(scores, [0, heads, -1, 0]), mask);
  const probs = op.softmax(logits, -1);
  return { out: op.reshape(op.matmul(op.reshape(probs, [0, heads / rep, -1, 0]), v), [0, heads, -1, headDim]), logits };
}

/** probs [batch, heads, seq, total] → the mean over heads of query row `row[b]` of each sequence, [batch, total]. */
function headMeanRow(probs: Value, row: Value): Value {
  const g = probs.graph;
  const heads = probs.dim(1) as number;
  // GatherND indices [batch, heads, 2] = (h, row[b]) pick probs[b, h, row[b], :].
  const head = g.constant('int64', [1, heads, 1], Array.from({ length: heads }, (_, h) => BigInt(h)), 'head_index');
  const rowIndex = op.unsqueeze(row, [1, 2]);
  const index = op.concat([op.add(head, op.mul(rowIndex, 0)), op.add(rowIndex, op.mul(head, 0))], -1);
  return op.reduceMean(op.gatherND(probs, index, 1), [1], false);
}
