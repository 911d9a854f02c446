import { KVCache, causalMask } from '../runtime/kv-cache.js';
import { ort, type Session } from '../runtime/session.js';
import type { LlamaConfig } from './llama/config.js';

/**
 * One call of the decoder graph (see buildDecoderGraph): a batch of rows padded to `seq` tokens, each row with
 * its own number of real tokens. A row may drop tokens before any layer (`keep`): from then on that layer and
 * the following ones compute, cache and attend to only the kept tokens, at their original positions.
 */
export interface DecoderCall {
  /** [batch, seq, hidden] input embeddings. */
  embeds: Float32Array;
  seq: number;
  /** Real tokens per row; the rest of the row is padding. */
  counts: readonly number[];
  /** RoPE position of every real token, per row. */
  positions: readonly (readonly number[])[];
  /**
   * keep[layer][row]: indices into the tokens the previous layer computed that stay from `layer` on (absent:
   * all stay). keep[0] is ignored: layer 0 sees every token.
   */
  keep?: readonly (readonly (readonly number[] | undefined)[] | undefined)[];
  /** Per row, indices into the last layer's tokens whose logits are wanted. */
  logitRows: readonly (readonly number[])[];
  /** attnRow[layer][row]: the query row (in that layer's tokens) whose head-mean attention `forward` returns; default 0. */
  attnRow?: readonly (readonly number[] | undefined)[];
  /**
   * Per row, the sequence's constant input of a graph that takes one ([batch, width] `conditioning`: LaVIN's
   * per-layer routes). Given with a sequence's first call, it is kept with the cache for the calls that follow.
   */
  conditioning?: readonly Float32Array[];
}

/** The tokens one layer computes in a call: per row, their count and positions; `index` selects them from the previous layer's. */
export interface LayerLayout {
  seq: number;
  counts: number[];
  positions: number[][];
  index: number[][];
}

/** A layer's head-mean attention of one query row per sequence: [batch, past + seq] (`past` cache slots first, then the call's tokens). */
export interface LayerAttention {
  past: number;
  scores: Float32Array;
}

export class Decoder {
  constructor(
    readonly config: LlamaConfig,
    readonly session: Session,
  ) {}

  /** A cache whose layers each keep their own lengths (withdrawn tokens are never cached). */
  newCache(batch: number): KVCache {
    return new KVCache(batch, this.config.kvHeads, this.config.headDim, Array.from({ length: this.config.layers }, (_, i) => i));
  }

  /** The token layout of every layer for a call. */
  layouts(call: DecoderCall): LayerLayout[] {
    const all = (n: number) => Array.from({ length: n }, (_, i) => i);
    const layouts: LayerLayout[] = [{ seq: call.seq, counts: [...call.counts], positions: call.positions.map((p) => [...p]), index: call.counts.map(all) }];
    for (let i = 1; i < this.config.layers; i++) {
      const prev = layouts[i - 1]!;
      const index = prev.counts.map((n, b) => {
        const keep = call.keep?.[i]?.[b];
        if (!keep) return all(n);
        for (const j of keep) if (!Number.isInteger(j) || j < 0 || j >= n) throw new RangeError(`layer ${i} row ${b}: keep index ${j} outside 0..${n - 1}`);
        return [...keep];
      });
      const unchanged = index.every((idx, b) => idx.length === prev.counts[b]);
      layouts.push(unchanged ? { ...prev, index } : {
        seq: Math.max(1, ...index.map((k) => k.length)),
        counts: index.map((k) => k.length),
        positions: index.map((k, b) => k.map((j) => prev.positions[b]![j]!)),
        index,
      });
    }
    return layouts;
  }

  /** Runs one call, appends its keys and values to `cache`, and returns logits [batch, n, vocab] (n = max wanted). */
  async forward(cache: KVCache, call: DecoderCall): Promise<{ logits: Float32Array; n: number; layouts: LayerLayout[]; attention: LayerAttention[]; outputs: Record<string, ort.Tensor> }> {
    const batch = call.counts.length;
    const { hidden, kvHeads, headDim, vocab, layers } = this.config;
    if (call.embeds.length !== batch * call.seq * hidden) throw new RangeError(`embeds hold ${call.embeds.length} values, expected ${batch}×${call.seq}×${hidden}`);
    const layouts = this.layouts(call);
    const feeds: Record<string, ort.Tensor> = { inputs_embeds: new ort.Tensor('float32', call.embeds, [batch, call.seq, hidden]) };
    // Layers with the same layout and cache state share their position and mask tensors.
    let shared: { layout: LayerLayout; lengths: string; positions: ort.Tensor; mask: ort.Tensor; capacity: number } | undefined;
    const zeroRows = new ort.Tensor('int64', new BigInt64Array(batch), [batch]);
    const capacities: number[] = [];
    for (let i = 0; i < layers; i++) {
      const layout = layouts[i]!;
      // The past input is the cache as it is now (a fresh cache: no slots at all); room for this call's keys is
      // made after the run, when they are written.
      const capacity = cache.capacityOf(i);
      const lengths = cache.lengths[i]!.join(',');
      if (!shared || shared.layout.positions !== layout.positions || shared.lengths !== lengths || shared.capacity !== capacity) {
        shared = {
          layout, lengths, capacity,
          positions: new ort.Tensor('int64', padded(layout.positions, layout.seq), [batch, layout.seq]),
          mask: new ort.Tensor('float32', causalMask(cache.lengths[i]!, layout.counts, layout.seq, capacity), [batch, 1, layout.seq, capacity + layout.seq]),
        };
      }
      if (i > 0) feeds[`keep.${i}`] = new ort.Tensor('int64', padded(layout.index, layout.seq), [batch, layout.seq]);
      feeds[`positions.${i}`] = shared.positions;
      const attnRow = call.attnRow?.[i];
      feeds[`attn_row.${i}`] = attnRow ? new ort.Tensor('int64', BigInt64Array.from(attnRow, BigInt), [batch]) : zeroRows;
      capacities.push(capacity);
      feeds[`mask.${i}`] = shared.mask;
      const past = cache.past(i);
      feeds[`past_k.${i}`] = new ort.Tensor('float32', past.k, [batch, kvHeads, past.capacity, headDim]);
      feeds[`past_v.${i}`] = new ort.Tensor('float32', past.v, [batch, kvHeads, past.capacity, headDim]);
    }
    if (this.session.inputNames.includes('conditioning')) feeds['conditioning'] = conditioningTensor(cache, call.conditioning);
    const n = Math.max(1, ...call.logitRows.map((r) => r.length));
    feeds['logit_index'] = new ort.Tensor('int64', padded(call.logitRows, n), [batch, n]);
    const out = await this.session.run(feeds);
    for (let i = 0; i < layers; i++) {
      const layout = layouts[i]!;
      cache.reserve(i, Math.max(...layout.counts));
      cache.write(i, out[`new_k.${i}`]!.data as Float32Array, out[`new_v.${i}`]!.data as Float32Array, layout.seq, layout.counts);
      cache.advance(i, layout.counts);
    }
    const logits = out['logits']!.data as Float32Array;
    if (logits.length !== batch * n * vocab) throw new RangeError(`logits hold ${logits.length} values, expected ${batch}×${n}×${vocab}`);
    const attention = capacities.map((past, i) => ({ past, scores: out[`attn.${i}`]!.data as Float32Array }));
    return { logits, n, layouts, attention, outputs: out };
  }
}

/** The `conditioning` input: the call's rows (kept with the cache from now on), else those the cache keeps. */
function conditioningTensor(cache: KVCache, rows: readonly Float32Array[] | undefined): ort.Tensor {
  if (rows) {
    if (rows.length !== cache.batch) throw new RangeError(`conditioning for ${rows.length} rows, the batch has ${cache.batch}`);
    cache.conditioning = rows;
  }
  const kept = cache.conditioning;
  if (!kept) throw new RangeError('the decoder takes a conditioning input per sequence, and none was given');
  const width = kept[0]!.length;
  const data = new Float32Array(kept.length * width);
  kept.forEach((row, b) => {
    if (row.length !== width) throw new RangeError(`conditioning rows differ in width (${row.length} vs ${width})`);
    data.set(row, b * width);
  });
  return new ort.Tensor('float32', data, [kept.length, width]);
}

/** Rows of integers padded with 0 to `width`, as int64. */
function padded(rows: readonly (readonly number[])[], width: number): BigInt64Array {
  const out = new BigInt64Array(rows.length * width);
  rows.forEach((r, b) => r.forEach((v, i) => (out[b * width + i] = BigInt(v))));
  return out;
}

/** The inputs of a decoder graph built with `wholeSequence` (training): positions 0.. of every row, and the mask. */
export function wholeSequenceFeeds(batch: number, seq: number, mask: Float32Array): Record<string, ort.Tensor> {
  const positions = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) for (let i = 0; i < seq; i++) positions[b * seq + i] = BigInt(i);
  return { positions: new ort.Tensor('int64', positions, [batch, seq]), mask: new ort.Tensor('float32', mask, [batch, 1, seq, seq]) };
}
