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
  let candidates = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (opts.topK && opts.topK > 0) candidates = candidates.slice(0, opts.topK);
  const max = logits[candidates[0]!]!;
  let probs = candidates.map((i) => Math.exp((logits[i]! - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  if (opts.topP !== undefined && opts.topP < 1) {
    // Keep the smallest prefix whose mass reaches top_p (always at least one token).
    let mass = 0;
    let keep = 0;
    while (keep < probs.length && (keep === 0 || mass < opts.topP * total)) mass += probs[keep++]!;
    candidates = candidates.slice(0, keep);
    probs = probs.slice(0, keep);
    total = mass;
  }
  let r = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    r -= probs[i]!;
    if (r < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}
