/**
 * Learning-rate schedules by update step. warmupCosine: linear warm-up to `base` over `warmup` steps, then a
 * half-cycle cosine to zero at `steps` (the schedule of the lab's from-scratch trainers).
 */
export function warmupCosine(base: number, step: number, steps: number, warmup: number): number {
  if (step < warmup) return (base * (step + 1)) / warmup;
  return base * 0.5 * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, steps - warmup)));
}

/** Mean loss of the first and of the last tenth of a run's steps (at least one step each). */
export function lossEnds(losses: readonly number[]): { firstLoss: number; lastLoss: number } {
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return { firstLoss: mean(losses.slice(0, tenth)), lastLoss: mean(losses.slice(-tenth)) };
}
