/**
 * Shared pieces of the benchmark suites: timing (warm-up, repetitions, median/min/max), interleaved A/B
 * measurement, and the Suite/Report shapes that run.ts prints as a table or writes as JSON.
 *
 * House rule (docs/BENCHMARKS.md): speed is reported as a ratio against a baseline measured in the same run,
 * interleaved with it, as the median of several repetitions after warm-up, with the spread beside it.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Summary of repeated measurements (any unit: the caller says which). */
export interface Stats {
  median: number;
  min: number;
  max: number;
  /** First and third quartiles (linear interpolation between order statistics). */
  p25: number;
  p75: number;
  /** Number of measured repetitions (warm-up runs excluded). */
  n: number;
  samples: number[];
}

export function summarize(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(s, 0.5), min: s[0]!, max: s[s.length - 1]!, p25: quantile(s, 0.25), p75: quantile(s, 0.75),
    n: s.length, samples: [...samples],
  };
}

/** Quantile q of sorted values, interpolating linearly between order statistics. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Interquartile range of `stats` as a fraction of its median: (p75 − p25) / median. */
export function spread(stats: Stats): number {
  return (stats.p75 - stats.p25) / stats.median;
}

export interface TimingOptions {
  /** Untimed runs first (JIT, caches, ORT's lazy allocations). */
  warmup: number;
  /** Timed runs. */
  reps: number;
  /**
   * Untimed idle time before each call, in ms (default 0). ORT's idle worker threads spin for a while after a
   * run; on a machine with few cores, the spinning threads of the contender that just ran slow down the next
   * one. A pause of a few ms lets them go to sleep, so each call starts from the same quiet state.
   */
  pauseMs?: number;
}

/** Wall time of one call of `fn`, in milliseconds. */
export async function timeOnce(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Times `fn` (ms per call): `warmup` untimed calls, then `reps` timed ones. */
export async function measure(fn: () => unknown, opts: TimingOptions): Promise<Stats> {
  const pause = async () => { if (opts.pauseMs) await sleep(opts.pauseMs); };
  for (let i = 0; i < opts.warmup; i++) { await pause(); await fn(); }
  const samples: number[] = [];
  for (let i = 0; i < opts.reps; i++) { await pause(); samples.push(await timeOnce(fn)); }
  return summarize(samples);
}

export interface Interleaved<K extends string> {
  /** ms per call of each contender. */
  times: Record<K, Stats>;
  /** Raw per-round times, in the order given, so callers can form paired ratios. */
  rounds: Record<K, number>[];
}

/**
 * Times several contenders in rounds: each round runs every contender once, so noise (other processes, clock
 * changes, thermal drift) hits all of them alike. Each round runs them in its own order (a seeded shuffle: a
 * rotation of one fixed order would leave every contender, past two, always right after the same one, and a
 * contender that follows a memory-streaming one measured up to 40 % slower here). Warm-up rounds are run the same
 * way and discarded.
 */
export async function interleave<K extends string>(fns: Record<K, () => unknown>, opts: TimingOptions): Promise<Interleaved<K>> {
  const keys = Object.keys(fns) as K[];
  const rounds: Record<K, number>[] = [];
  for (let r = 0; r < opts.warmup + opts.reps; r++) {
    const round = {} as Record<K, number>;
    for (const k of shuffled(keys, r)) {
      if (opts.pauseMs) await sleep(opts.pauseMs);
      round[k] = await timeOnce(fns[k]);
    }
    if (r >= opts.warmup) rounds.push(round);
  }
  const times = {} as Record<K, Stats>;
  for (const k of keys) times[k] = summarize(rounds.map((round) => round[k]));
  return { times, rounds };
}

/** `items` in an order fixed by `seed` (Fisher–Yates; positions drawn by a 32-bit integer hash), so runs repeat. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    let x = Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(i, 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
    x = (x ^ (x >>> 16)) >>> 0;
    const j = Math.floor((x / 2 ** 32) * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Per-round ratio a/b of an interleaved measurement (paired, so slow rounds cancel), summarised. */
export function pairedRatio<K extends string>(m: Interleaved<K>, a: K, b: K): Stats {
  return summarize(m.rounds.map((round) => round[a] / round[b]));
}

/** Peak resident set size of this process so far, in bytes. */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

// ---- suites and reports -------------------------------------------------------------------------------------

/** What run.ts passes to every suite: the parsed command line. */
export interface SuiteContext {
  /** ORT intra-op threads for every session the suite makes (--threads, default all cores). */
  threads: number;
  /** --reps / --warmup overrides; a suite uses its own defaults when these are undefined. */
  reps?: number;
  warmup?: number;
  /** Free-form `--key value` / `--flag` options run.ts did not consume, for suite-specific switches. */
  options: Readonly<Record<string, string | true>>;
  /** Progress messages (stderr), so stdout stays a clean table or JSON document. */
  log(message: string): void;
}

export interface Column {
  key: string;
  /** Header in the table; defaults to key. */
  label?: string;
  /** Digits after the decimal point for numbers (default 2). */
  digits?: number;
}

export type Cell = number | string | boolean | null;

export interface Report {
  /** One line saying what was measured. */
  title: string;
  columns: Column[];
  rows: Record<string, Cell>[];
  /** Lines printed under the table (settings, caveats, verdicts). */
  notes: string[];
  /** Anything else worth keeping in the JSON output (raw samples, …). */
  details?: unknown;
}

export interface Suite {
  name: string;
  description: string;
  /** Part of the default `npm run bench` set. Slow or resource-hungry suites say false and run only by name. */
  quick: boolean;
  /** The suite's own --key[=value] options and what they do (run.ts lists them and refuses unknown ones). */
  options?: Readonly<Record<string, string>>;
  run(ctx: SuiteContext): Promise<Report>;
}

/** Renders a report as an aligned text table with its title and notes. */
export function formatReport(suite: string, report: Report): string {
  const header = report.columns.map((c) => c.label ?? c.key);
  const body = report.rows.map((row) => report.columns.map((c) => formatCell(row[c.key], c.digits ?? 2)));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `## ${suite}: ${report.title}`,
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    ...(report.notes.length ? ['', ...report.notes.map((n) => `  ${n}`)] : []),
    '',
  ].join('\n');
}

function formatCell(v: Cell | undefined, digits: number): string {
  if (v === undefined || v === null) return '—';
  if (typeof v === 'number') return Number.isFinite(v) ? v.toFixed(digits) : String(v);
  return String(v);
}
