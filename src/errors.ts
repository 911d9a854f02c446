/**
 * Bad input from outside: a file, an argument, a request. Every layer throws this for input it refuses;
 * the CLI prints `error: <message>` and exits 2, the server answers 4xx. Anything else is an internal failure.
 */
export class InputError extends Error {
  override name = 'InputError';
}

/**
 * The known name nearest to a mistyped one (an option, a suite): the only one it is a prefix of, else the one at the smallest edit
 * distance (insertions, deletions, substitutions, swaps of neighbours) if that is at most a third of its length
 * (at least 2).
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  if (name === '') return undefined;
  const prefixed = known.filter((k) => k.startsWith(name));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Damerau-Levenshtein distance (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
