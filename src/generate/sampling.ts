/** Seeded PRNG (mulberry32): the same seed gives the same samples on every platform. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SamplingOptions {
  /** 0 (default) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** transformers' RepetitionPenaltyLogitsProcessor: previously seen tokens' logits divided (or, if negative, multiplied) by it. */
  repetitionPenalty?: number;
}

/** Index of the largest value, the first on ties (torch.argmax). */
/** −log softmax(row)[target], computed stably (max subtracted before exponentiating). */
export function negativeLogLikelihood(row: ArrayLike<number>, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return max + Math.log(sum) - row[target]!;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * Picks the next token from one row of logits, in transformers' order: repetition penalty, temperature, top-k,
 * top-p, then a draw. `seen` are the ids already in the sequence.
 */
export function sampleToken(row: Float32Array, opts: SamplingOptions, seen: Iterable<number>, random: () => number): number {
  let logits = row;
  const penalty = opts.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    logits = Float32Array.from(row);
    for (const id of new Set(seen)) {
      if (id < 0 || id >= logits.length) continue;
      const v = logits[id]!;
      logits[id] = v < 0 ? v * penalty : v / penalty;
    }
  }
  const temperature = opts.temperature ?? 0;
  if (temperature <= 0) return argmax(logits);
  // Softmax weights relative to the largest logit; NaN logits count as impossible.
  const max = logits[argmax(logits)]!;
  const weight = (i: number) => {
    const w = Math.exp((logits[i]! - max) / temperature);
    return Number.isNaN(w) ? 0 : w;
  };
  const topK = opts.topK && opts.topK > 0 ? Math.min(opts.topK, logits.length) : undefined;
  const topP = opts.topP !== undefined && opts.topP < 1 ? opts.topP : undefined;
  if (topK === undefined && topP === undefined) {
    // Plain sampling: one pass over the cumulative weights, no sort.
    let total = 0;
    for (let i = 0; i < logits.length; i++) total += weight(i);
    let r = random() * total;
    for (let i = 0; i < logits.length; i++) {
      r -= weight(i);
      if (r < 0) return i;
    }
    return argmax(logits);
  }
  // Candidates in descending order, taken lazily from a heap: top-k needs k of them, top-p only as many as
  // reach its mass, so the vocabulary is never sorted whole.
  const heap = new MaxHeap(logits);
  let total = 0;
  if (topK === undefined) for (let i = 0; i < logits.length; i++) total += weight(i);
  const candidates: number[] = [];
  const weights: number[] = [];
  let taken = 0;
  while (heap.size > 0 && (topK === undefined || candidates.length < topK)) {
    const i = heap.pop();
    candidates.push(i);
    weights.push(weight(i));
    taken += weights[weights.length - 1]!;
    if (topK === undefined && taken >= topP! * total) break;
  }
  let kept = weights.length;
  if (topP !== undefined && topK !== undefined) {
    // Top-p within the top-k: the smallest prefix whose mass reaches top_p of theirs (at least one token).
    const mass = weights.reduce((a, b) => a + b, 0);
    let acc = 0;
    kept = 0;
    while (kept < weights.length && (kept === 0 || acc < topP * mass)) acc += weights[kept++]!;
  }
  let r = random() * weights.slice(0, kept).reduce((a, b) => a + b, 0);
  for (let i = 0; i < kept; i++) {
    r -= weights[i]!;
    if (r < 0) return candidates[i]!;
  }
  return candidates[kept - 1]!;
}

/** Indices ordered by descending value, the lower index first on ties (torch.topk / a stable sort's order). */
class MaxHeap {
  private readonly items: number[];

  constructor(private readonly values: Float32Array) {
    this.items = Array.from(values.keys());
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  get size(): number {
    return this.items.length;
  }

  pop(): number {
    const top = this.items[0]!;
    const last = this.items.pop()!;
    if (this.items.length > 0) {
      this.items[0] = last;
      this.down(0);
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const va = this.values[a]!, vb = this.values[b]!;
    // NaN sorts last.
    if (Number.isNaN(va)) return false;
    if (Number.isNaN(vb)) return true;
    return va > vb || (va === vb && a < b);
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < n && this.before(this.items[l]!, this.items[best]!)) best = l;
      if (r < n && this.before(this.items[r]!, this.items[best]!)) best = r;
      if (best === i) return;
      [this.items[i], this.items[best]] = [this.items[best]!, this.items[i]!];
      i = best;
    }
  }
}
