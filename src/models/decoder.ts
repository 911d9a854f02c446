import { KVCache, causalMask } from '../runtime/kv-cache.js';
import { ort, type Session } from '../runtime/session.js';
import type { LlamaConfig } from './llama/config.js';
import { groupOfLayer } from './llama/graph.js';

/**
 * One call of the decoder graph (see buildDecoderGraph): a batch of rows padded to `seq` tokens, each row with
 * its own number of real tokens. Later layer groups (`keep`, one entry per group after the first) see only the
 * previous group's rows they keep, with their original positions.
 */
export interface DecoderCall {
  /** [batch, seq, hidden] input embeddings. */
  embeds: Float32Array;
  seq: number;
  /** Real tokens per row; the rest of the row is padding. */
  counts: readonly number[];
  /** RoPE position of every real token, per row. */
  positions: readonly (readonly number[])[];
  /** For each group g ≥ 1: per row, the indices (into group g-1's tokens of this call) that stay. */
  keep?: readonly (readonly (readonly number[])[])[];
  /** Per row, indices into the last group's tokens of this call whose logits are wanted. */
  logitRows: readonly (readonly number[])[];
}

interface GroupLayout {
  seq: number;
  counts: number[];
  positions: number[][];
}

export class Decoder {
  readonly layerGroups: number[];

  constructor(
    readonly config: LlamaConfig,
    readonly session: Session,
    readonly groupStarts: readonly number[] = [],
  ) {
    this.layerGroups = Array.from({ length: config.layers }, (_, i) => groupOfLayer(i, groupStarts));
  }

  newCache(batch: number): KVCache {
    return new KVCache(batch, this.config.kvHeads, this.config.headDim, this.layerGroups);
  }

  /** Runs one call, appends its keys and values to `cache`, and returns logits [batch, n, vocab] (n = max wanted). */
  async forward(cache: KVCache, call: DecoderCall): Promise<{ logits: Float32Array; n: number }> {
    const batch = call.counts.length;
    const { hidden, kvHeads, headDim, vocab } = this.config;
    if (call.embeds.length !== batch * call.seq * hidden) throw new RangeError(`embeds hold ${call.embeds.length} values, expected ${batch}×${call.seq}×${hidden}`);
    const layouts: GroupLayout[] = [{ seq: call.seq, counts: [...call.counts], positions: call.positions.map((p) => [...p]) }];
    const feeds: Record<string, ort.Tensor> = { inputs_embeds: new ort.Tensor('float32', call.embeds, [batch, call.seq, hidden]) };
    // Without an explicit layout every later group keeps every token (decode steps of text tokens).
    const keepAll = call.counts.map((n) => Array.from({ length: n }, (_, i) => i));
    const keeps = call.keep ?? this.groupStarts.map(() => keepAll);
    for (const [g, keep] of keeps.entries()) {
      const prev = layouts[g]!;
      const seq = Math.max(1, ...keep.map((k) => k.length));
      layouts.push({ seq, counts: keep.map((k) => k.length), positions: keep.map((k, b) => k.map((i) => prev.positions[b]![i]!)) });
      feeds[`keep.${g + 1}`] = new ort.Tensor('int64', padded(keep, seq), [batch, seq]);
    }
    if (layouts.length !== this.groupStarts.length + 1) throw new RangeError(`call has ${layouts.length} token layouts, the graph ${this.groupStarts.length + 1}`);
    layouts.forEach((layout, g) => {
      cache.reserve(g, layout.seq);
      feeds[`positions.${g}`] = new ort.Tensor('int64', padded(layout.positions, layout.seq), [batch, layout.seq]);
      feeds[`mask.${g}`] = new ort.Tensor('float32', causalMask(cache.lengths[g]!, layout.counts, layout.seq, cache.capacityOf(g)), [batch, 1, layout.seq, cache.capacityOf(g) + layout.seq]);
    });
    for (let i = 0; i < this.config.layers; i++) {
      const past = cache.past(i);
      feeds[`past_k.${i}`] = new ort.Tensor('float32', past.k, [batch, kvHeads, past.capacity, headDim]);
      feeds[`past_v.${i}`] = new ort.Tensor('float32', past.v, [batch, kvHeads, past.capacity, headDim]);
    }
    const n = Math.max(1, ...call.logitRows.map((r) => r.length));
    feeds['logit_index'] = new ort.Tensor('int64', padded(call.logitRows, n), [batch, n]);
    const out = await this.session.run(feeds);
    for (let i = 0; i < this.config.layers; i++) {
      const layout = layouts[this.layerGroups[i]!]!;
      cache.write(i, out[`new_k.${i}`]!.data as Float32Array, out[`new_v.${i}`]!.data as Float32Array, layout.seq, layout.counts);
    }
    layouts.forEach((layout, g) => cache.advance(g, layout.counts));
    const logits = out['logits']!.data as Float32Array;
    if (logits.length !== batch * n * vocab) throw new RangeError(`logits hold ${logits.length} values, expected ${batch}×${n}×${vocab}`);
    return { logits, n };
  }
}

/** Rows of integers padded with 0 to `width`, as int64. */
function padded(rows: readonly (readonly number[])[], width: number): BigInt64Array {
  const out = new BigInt64Array(rows.length * width);
  rows.forEach((r, b) => r.forEach((v, i) => (out[b * width + i] = BigInt(v))));
  return out;
}
