/**
 * BPE segmentation as SentencePiece does it (google/sentencepiece src/bpe_model.cc `Model::SampleEncode`, v0.1.97,
 * without dropout) and as HF tokenizers does it (tokenizers/src/models/bpe/word.rs `merge_all`): start from
 * initial symbols (characters; frozen symbols never merge), then repeatedly merge the adjacent pair with the
 * highest priority, the left-most pair on ties. A priority queue with lazy invalidation makes it O(n log n).
 */

export interface MergeVocab {
  /**
   * Priority of merging two adjacent symbols (higher first), or undefined when they do not merge. SentencePiece:
   * the score of the concatenation if it is a piece; HF BPE: minus the rank of the pair in `merges`.
   */
  mergeScore(left: string, right: string): number | undefined;
  /** SentencePiece's unused pieces may be produced by a merge but are split back into the two symbols that formed them. */
  isUnused?(piece: string): boolean;
}

export interface InitialSymbol {
  text: string;
  /** User-defined symbols are frozen: never merged with a neighbour. */
  frozen: boolean;
}

interface Candidate {
  score: number;
  left: number;
  right: number;
  /** Length of the merged text when queued; a different current length means the candidate is stale. */
  length: number;
}

/** Returns the final pieces, in order. */
export function bpeMerge(initial: readonly InitialSymbol[], vocab: MergeVocab): string[] {
  const n = initial.length;
  const text = initial.map((s) => s.text);
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
  const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const queue = new CandidateQueue();
  const unusedSplits = new Map<string, [string, string]>();

  const consider = (left: number, right: number): void => {
    if (left < 0 || right < 0 || initial[left]!.frozen || initial[right]!.frozen) return;
    const score = vocab.mergeScore(text[left]!, text[right]!);
    if (score === undefined) return;
    const merged = text[left]! + text[right]!;
    queue.push({ score, left, right, length: merged.length });
    if (vocab.isUnused?.(merged)) unusedSplits.set(merged, [text[left]!, text[right]!]);
  };

  for (let i = 1; i < n; i++) consider(i - 1, i);
  for (let top = queue.pop(); top; top = queue.pop()) {
    const l = text[top.left]!;
    const r = text[top.right]!;
    if (l === '' || r === '' || l.length + r.length !== top.length) continue;
    text[top.left] = l + r;
    text[top.right] = '';
    next[top.left] = next[top.right]!;
    if (next[top.right]! >= 0) prev[next[top.right]!] = top.left;
    consider(prev[top.left]!, top.left);
    consider(top.left, next[top.left]!);
  }

  const out: string[] = [];
  const resegment = (piece: string): void => {
    const split = vocab.isUnused?.(piece) ? unusedSplits.get(piece) : undefined;
    if (!split) out.push(piece);
    else {
      resegment(split[0]);
      resegment(split[1]);
    }
  };
  for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) resegment(text[i]!);
  return out;
}

/** Binary max-heap on (score, then smaller left index), bpe_model.cc's SymbolPairComparator. */
class CandidateQueue {
  private readonly heap: Candidate[] = [];

  push(c: Candidate): void {
    const h = this.heap;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && before(h[l]!, h[best]!)) best = l;
        if (r < h.length && before(h[r]!, h[best]!)) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best]!, h[i]!];
        i = best;
      }
    }
    return top;
  }
}

function before(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}
