/** Capacity steps, in tokens (see KVCache). */
const GROWTH = 256;

/**
 * Key/value caches of a batch, one buffer pair per layer, laid out [batch, kv_heads, capacity, head_dim] so
 * that the whole buffer is the `past` input of the next call without copies. Each group of layers (the decoder
 * makes every layer its own group, so that a method can drop tokens before any layer) has its own capacity and
 * per-row lengths. Capacity grows in steps of GROWTH tokens: a decode step copies only its new keys, a growth
 * copies the cache once every GROWTH tokens, and attention never runs over more than GROWTH − 1 empty (masked) slots.
 */
export class KVCache {
  private readonly keys: Float32Array[] = [];
  private readonly values: Float32Array[] = [];
  private readonly capacity: number[];
  /** lengths[group][row]: tokens cached for that row. */
  readonly lengths: number[][];
  /** Per row, the constant input its sequence was started with (see DecoderCall.conditioning), if the model takes one. */
  conditioning?: readonly Float32Array[];

  constructor(
    readonly batch: number,
    readonly kvHeads: number,
    readonly headDim: number,
    /** The group of each layer. */
    readonly layerGroups: readonly number[],
  ) {
    const groups = Math.max(...layerGroups) + 1;
    this.capacity = new Array<number>(groups).fill(0);
    this.lengths = Array.from({ length: groups }, () => new Array<number>(batch).fill(0));
    for (let i = 0; i < layerGroups.length; i++) {
      this.keys.push(new Float32Array(0));
      this.values.push(new Float32Array(0));
    }
  }

  get layers(): number {
    return this.layerGroups.length;
  }

  capacityOf(group: number): number {
    return this.capacity[group]!;
  }

  /** The cache buffers of a layer, [batch, kv_heads, capacity, head_dim]. */
  past(layer: number): { k: Float32Array; v: Float32Array; capacity: number } {
    return { k: this.keys[layer]!, v: this.values[layer]!, capacity: this.capacity[this.layerGroups[layer]!]! };
  }

  /** Makes room for `extra` more tokens in every row of `group`. */
  reserve(group: number, extra: number): void {
    const needed = Math.max(...this.lengths[group]!) + extra;
    const old = this.capacity[group]!;
    if (needed <= old) return;
    const cap = Math.ceil(needed / GROWTH) * GROWTH;
    const { batch, kvHeads, headDim } = this;
    for (let layer = 0; layer < this.layers; layer++) {
      if (this.layerGroups[layer] !== group) continue;
      for (const store of [this.keys, this.values]) {
        const from = store[layer]!;
        const to = new Float32Array(batch * kvHeads * cap * headDim);
        for (let bh = 0; bh < batch * kvHeads; bh++) to.set(from.subarray(bh * old * headDim, (bh * old + old) * headDim), bh * cap * headDim);
        store[layer] = to;
      }
    }
    this.capacity[group] = cap;
  }

  /**
   * Writes a call's new keys and values of one layer, [batch, kv_heads, seq, head_dim], after each row's cached
   * tokens: row b's first `counts[b]` tokens (the rest is padding). Call `advance` once all layers are written.
   */
  write(layer: number, newK: Float32Array, newV: Float32Array, seq: number, counts: readonly number[]): void {
    const group = this.layerGroups[layer]!;
    const cap = this.capacity[group]!;
    const { kvHeads, headDim } = this;
    for (let b = 0; b < this.batch; b++) {
      const at = this.lengths[group]![b]!;
      const n = counts[b]!;
      if (at + n > cap) throw new RangeError(`KV cache of layer ${layer} has no room (reserve first)`);
      for (let h = 0; h < kvHeads; h++) {
        const src = (b * kvHeads + h) * seq * headDim;
        const dst = ((b * kvHeads + h) * cap + at) * headDim;
        this.keys[layer]!.set(newK.subarray(src, src + n * headDim), dst);
        this.values[layer]!.set(newV.subarray(src, src + n * headDim), dst);
      }
    }
  }

  /**
   * A cache of `rows.length` rows whose row i is row `rows[i].row` of `rows[i].from` (same geometry: caches of one
   * decoder), or empty where undefined, in every layer with its lengths: how a running batch takes in sequences
   * prefilled apart and lets finished ones go. Capacity is what the longest row needs, in GROWTH steps.
   * Rows that are all of one cache's rows in their order are that cache itself, not a copy: a batch that starts
   * with one prefilled call takes its cache over (at 2000 tokens of a 7B-shaped layer pair, a 128 MB copy saved).
   */
  static gather(like: KVCache, rows: readonly ({ from: KVCache; row: number } | undefined)[]): KVCache {
    const only = rows[0]?.from;
    if (only && rows.length === only.batch && rows.every((r, b) => r?.from === only && r.row === b)) return only;
    const out = new KVCache(rows.length, like.kvHeads, like.headDim, like.layerGroups);
    const { kvHeads, headDim } = like;
    for (let group = 0; group < out.capacity.length; group++) {
      rows.forEach((r, b) => (out.lengths[group]![b] = r ? r.from.lengths[group]![r.row]! : 0));
      out.capacity[group] = Math.ceil(Math.max(0, ...out.lengths[group]!) / GROWTH) * GROWTH;
    }
    for (let layer = 0; layer < out.layers; layer++) {
      const group = out.layerGroups[layer]!;
      const cap = out.capacity[group]!;
      for (const [store, source] of [[out.keys, (c: KVCache) => c.keys], [out.values, (c: KVCache) => c.values]] as const) {
        const to = new Float32Array(rows.length * kvHeads * cap * headDim);
        rows.forEach((r, b) => {
          if (!r) return;
          const from = source(r.from)[layer]!;
          const fromCap = r.from.capacity[group]!;
          const n = out.lengths[group]![b]! * headDim;
          for (let h = 0; h < kvHeads; h++) {
            const src = (r.row * kvHeads + h) * fromCap * headDim;
            to.set(from.subarray(src, src + n), (b * kvHeads + h) * cap * headDim);
          }
        });
        store[layer] = to;
      }
    }
    // Each row keeps its sequence's constant input; rows without a source (padding) borrow the first one's.
    const kept = rows.map((r) => (r ? r.from.conditioning?.[r.row] : undefined));
    const first = kept.find((c) => c !== undefined);
    if (first) out.conditioning = kept.map((c) => c ?? first);
    return out;
  }

  advance(group: number, counts: readonly number[]): void {
    counts.forEach((n, b) => (this.lengths[group]![b]! += n));
  }

  /** Bytes held by the caches. */
  bytes(): number {
    return [...this.keys, ...this.values].reduce((s, a) => s + a.byteLength, 0);
  }
}

/** transformers' mask value: finfo(float32).min rather than -inf, so a fully masked row stays finite. */
export const MASKED = -3.4028234663852886e38;

/**
 * The additive mask of one call for one group, [batch, 1, seq, capacity + seq]: row b's query s sees its cached
 * tokens (< lengths[b]) and this call's tokens up to itself; padding queries (s ≥ counts[b]) see only themselves.
 */
export function causalMask(lengths: readonly number[], counts: readonly number[], seq: number, capacity: number): Float32Array {
  const total = capacity + seq;
  const mask = new Float32Array(lengths.length * seq * total).fill(MASKED);
  lengths.forEach((len, b) => {
    for (let s = 0; s < seq; s++) {
      const row = (b * seq + s) * total;
      if (s < counts[b]!) {
        mask.fill(0, row, row + len);
        mask.fill(0, row + capacity, row + capacity + s + 1);
      } else {
        mask[row + capacity + s] = 0;
      }
    }
  });
  return mask;
}
