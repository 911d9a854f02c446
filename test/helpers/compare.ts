import assert from 'node:assert/strict';

/** Largest |a[i] − b[i]| of two arrays of the same length (the parity checks' measure: fp32 logits ≤ 1e-4). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
