/**
 * Suite `large-graph` (issue #2, not quick: ~2.2 GB written to os.tmpdir() twice, several GB of memory): a graph
 * whose fp32 weights exceed protobuf's 2 GB limit builds through Session.fromGraph (which then writes the model
 * with external data to a temp dir) and runs, and every output is checked exactly against JS.
 *
 * y = x · W, x [M, K] small integers, W [K, N] with W[k][n] = ((7k + 13n) mod 17 − 8) / 8, produced lazily
 * (a weight function called while serialising). Every product and partial sum is a multiple of 1/8 below
 * 2^21 in magnitude, so fp32 is exact in any summation order and the check is equality. The expected output
 * needs no K·N loop: y[m][n] = Σ_r C[m][r] · v((r + 13n) mod 17), where C[m][r] sums x[m][k] over k with
 * 7k mod 17 = r.
 *
 * Two phases, each with its own weights and session:
 *   1. serialise + load separately: writeOnnxModel to a temp dir (build time), then InferenceSession.create
 *      from the file (load time) — the two steps Session.fromGraph performs for graphs this large;
 *   2. Session.fromGraph end to end (the path the issue asks about).
 * Each phase runs the graph (1 warm-up + reps) and verifies the output.
 *
 * Options: --m=4 --k=16384 --n=33000 (default W = 2.16 GB), --split (W as two weights of N/2 columns, MatMuls
 * joined by Concat: no single weight ≥ 2 GB), --skip-phases (only phase 2), --cache (phase 3: Session.fromGraph
 * with a cache, a miss then a hit).
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Graph } from '../graph/ir.js';
import { writeOnnxModel } from '../graph/onnx.js';
import * as op from '../graph/ops/index.js';
import { Session, ort } from '../runtime/session.js';
import { measure, peakRss, type Report, type Suite, type SuiteContext } from './harness.js';

const PROTOBUF_LIMIT = 2 ** 31;

interface Dims { m: number; k: number; n: number }

const weightValue = (r: number) => (r - 8) / 8;

/** Column block [n0, n0 + cols) of W as little-endian fp32 bytes; `timing.ms` accumulates generation time. */
function weightBlock(k: number, n0: number, cols: number, timing: { ms: number }): Uint8Array {
  const t0 = performance.now();
  const f = new Float32Array(k * cols);
  const table = new Float32Array(17);
  for (let r = 0; r < 17; r++) table[r] = weightValue(r);
  for (let row = 0; row < k; row++) {
    let r = (7 * row + 13 * n0) % 17;
    const base = row * cols;
    for (let j = 0; j < cols; j++) {
      f[base + j] = table[r]!;
      r += 13;
      if (r >= 17) r -= 17;
    }
  }
  timing.ms += performance.now() - t0;
  return new Uint8Array(f.buffer);
}

function inputValues({ m, k }: Dims): Float32Array {
  const x = new Float32Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) x[i * k + j] = ((i * 3 + j * 5) % 7) - 3;
  return x;
}

function buildGraph({ m, k, n }: Dims, split: boolean, timing: { ms: number }): Graph {
  const g = new Graph('large');
  const x = g.input('x', 'float32', [m, k]);
  const blocks = split ? [[0, Math.ceil(n / 2)], [Math.ceil(n / 2), n - Math.ceil(n / 2)]] as const : [[0, n]] as const;
  const parts = blocks.map(([n0, cols], i) => {
    const w = g.weight(`w${i}`, 'float32', [k, cols], () => weightBlock(k, n0, cols, timing), k * cols * 4);
    return op.matmul(x, w);
  });
  g.output(parts.length === 1 ? parts[0]! : op.concat(parts, -1), 'y');
  return g;
}

/** Mismatches between `y` and the exact product (0 when all M·N outputs are equal). */
function verify({ m, k, n }: Dims, x: Float32Array, y: Float32Array): { mismatches: number; first?: string } {
  if (y.length !== m * n) return { mismatches: m * n, first: `output has ${y.length} values, expected ${m * n}` };
  let mismatches = 0;
  let first: string | undefined;
  for (let i = 0; i < m; i++) {
    const c = new Float64Array(17);
    for (let j = 0; j < k; j++) c[(7 * j) % 17]! += x[i * k + j]!;
    for (let col = 0; col < n; col++) {
      let expected = 0;
      const shift = (13 * col) % 17;
      for (let r = 0; r < 17; r++) expected += c[r]! * weightValue((r + shift) % 17);
      const got = y[i * n + col]!;
      if (got !== expected) {
        mismatches++;
        first ??= `y[${i}][${col}] = ${got}, expected ${expected}`;
      }
    }
  }
  return { mismatches, first };
}

const gb = (bytes: number) => bytes / 1e9;

/** Current RSS, after a full GC when node runs with --expose-gc (so the JS copy of W is gone). */
function residentAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage.rss();
}

async function runAndVerify(ctx: SuiteContext, dims: Dims, run: (feeds: Record<string, ort.Tensor>) => Promise<Record<string, ort.Tensor>>) {
  const xData = inputValues(dims);
  const x = new ort.Tensor('float32', xData, [dims.m, dims.k]);
  const t0 = performance.now();
  const first = await run({ x });
  const firstMs = performance.now() - t0;
  const check = verify(dims, xData, first.y!.data as Float32Array);
  if (check.mismatches) throw new Error(`large-graph: ${check.mismatches} of ${dims.m * dims.n} outputs wrong; first: ${check.first}`);
  const times = await measure(() => run({ x }), { warmup: ctx.warmup ?? 0, reps: ctx.reps ?? 5 });
  return { firstMs, times, verified: dims.m * dims.n };
}

async function run(ctx: SuiteContext): Promise<Report> {
  const int = (key: string, dflt: number) => {
    const v = ctx.options[key];
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${key} needs a positive integer`);
    return n;
  };
  const dims: Dims = { m: int('m', 4), k: int('k', 16384), n: int('n', 33000) };
  const split = ctx.options.split === true;
  const weightBytes = dims.k * dims.n * 4;
  const tmpBefore = new Set((await readdir(tmpdir())).filter((f) => f.startsWith('egret-model-')));
  ctx.log(`W [${dims.k}, ${dims.n}] = ${gb(weightBytes).toFixed(3)} GB${split ? ' as two weights' : ' as one weight'}; temp dir ${tmpdir()}`);
  const rows: Report['rows'] = [];
  const details: Record<string, unknown> = { dims, split, weightBytes };

  if (ctx.options['skip-phases'] !== true) {
    const timing = { ms: 0 };
    const dir = await mkdtemp(join(tmpdir(), 'egret-bench-large-'));
    try {
      const path = join(dir, 'model.onnx');
      ctx.log('phase 1: writeOnnxModel');
      let t0 = performance.now();
      await writeOnnxModel(buildGraph(dims, split, timing), path);
      const buildMs = performance.now() - t0;
      const dataSize = (await stat(`${path}.data`)).size;
      const modelSize = (await stat(path)).size;
      if (dataSize < weightBytes) throw new Error(`external data file has ${dataSize} bytes, the weights need ${weightBytes}`);
      ctx.log(`phase 1: InferenceSession.create (${(modelSize / 1024).toFixed(1)} KiB model, ${gb(dataSize).toFixed(3)} GB data)`);
      t0 = performance.now();
      const session = await ort.InferenceSession.create(path, { intraOpNumThreads: ctx.threads });
      const loadMs = performance.now() - t0;
      const rssLoaded = residentAfterGc();
      await rm(dir, { recursive: true, force: true });
      try {
        ctx.log('phase 1: run + verify');
        const r = await runAndVerify(ctx, dims, (f) => session.run(f));
        rows.push({
          path: 'writeOnnxModel + create', gen_s: timing.ms / 1000, build_s: buildMs / 1000, load_s: loadMs / 1000,
          first_ms: r.firstMs, run_ms: r.times.median, run_min: r.times.min, run_max: r.times.max,
          verified: r.verified, rss_gb: gb(rssLoaded), peak_rss_gb: gb(peakRss()),
        });
        details.phase1 = { genMs: timing.ms, buildMs, loadMs, modelSize, dataSize, run: r };
      } finally {
        await session.release();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  {
    const timing = { ms: 0 };
    ctx.log('phase 2: Session.fromGraph');
    const t0 = performance.now();
    const session = await Session.fromGraph(() => buildGraph(dims, split, timing), { threads: ctx.threads });
    const totalMs = performance.now() - t0;
    const rssLoaded = residentAfterGc();
    try {
      if (session.origin !== 'file') throw new Error(`Session.fromGraph took the '${session.origin}' path, expected 'file' (external data)`);
      ctx.log('phase 2: run + verify');
      const r = await runAndVerify(ctx, dims, (f) => session.run(f));
      rows.push({
        path: 'Session.fromGraph', gen_s: timing.ms / 1000, build_s: null, load_s: null, total_s: totalMs / 1000,
        first_ms: r.firstMs, run_ms: r.times.median, run_min: r.times.min, run_max: r.times.max,
        verified: r.verified, rss_gb: gb(rssLoaded), peak_rss_gb: gb(peakRss()),
      });
      details.phase2 = { genMs: timing.ms, totalMs, run: r };
    } finally {
      await session.dispose();
    }
  }
  if (ctx.options.cache === true) {
    // Session.fromGraph with a cache: a miss builds, lets ORT optimise and save the model (its initializers
    // external), a hit loads the saved model without calling the weight functions.
    const cacheDir = await mkdtemp(join(tmpdir(), 'egret-bench-cache-'));
    try {
      for (const expect of ['file', 'cache'] as const) {
        const timing = { ms: 0 };
        ctx.log(`phase 3: Session.fromGraph with cache (expect ${expect})`);
        const t0 = performance.now();
        const session = await Session.fromGraph(() => buildGraph(dims, split, timing), { threads: ctx.threads, cache: { dir: cacheDir, key: 'large-graph' } });
        const totalMs = performance.now() - t0;
        const rssLoaded = residentAfterGc();
        try {
          if (session.origin !== expect) throw new Error(`cached Session.fromGraph: origin '${session.origin}', expected '${expect}'`);
          const r = await runAndVerify(ctx, dims, (f) => session.run(f));
          rows.push({
            path: `fromGraph, cache ${expect === 'file' ? 'miss' : 'hit'}`, gen_s: timing.ms / 1000, build_s: null, load_s: null,
            total_s: totalMs / 1000, first_ms: r.firstMs, run_ms: r.times.median, run_min: r.times.min, run_max: r.times.max,
            verified: r.verified, rss_gb: gb(rssLoaded), peak_rss_gb: gb(peakRss()),
          });
          details[`phase3_${expect}`] = { genMs: timing.ms, totalMs, run: r };
        } finally {
          await session.dispose();
        }
      }
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  }
  const leftovers = (await readdir(tmpdir())).filter((f) => f.startsWith('egret-model-') && !tmpBefore.has(f));

  return {
    title: `x[${dims.m}, ${dims.k}] · W[${dims.k}, ${dims.n}], W = ${gb(weightBytes).toFixed(3)} GB fp32 ` +
      `(${weightBytes > PROTOBUF_LIMIT ? '>' : '≤'} 2^31 B)${split ? ', two weights + Concat' : ', one weight'}`,
    columns: [
      { key: 'path', label: 'path' },
      { key: 'gen_s', label: 'gen W s', digits: 2 },
      { key: 'build_s', label: 'build s', digits: 2 },
      { key: 'load_s', label: 'load s', digits: 2 },
      { key: 'total_s', label: 'fromGraph s', digits: 2 },
      { key: 'first_ms', label: '1st run ms', digits: 1 },
      { key: 'run_ms', label: 'run ms', digits: 1 },
      { key: 'run_min', label: 'min', digits: 1 },
      { key: 'run_max', label: 'max', digits: 1 },
      { key: 'verified', label: 'outputs exact', digits: 0 },
      { key: 'rss_gb', label: 'RSS loaded GB', digits: 2 },
      { key: 'peak_rss_gb', label: 'peak RSS GB', digits: 2 },
    ],
    rows,
    notes: [
      `threads ${ctx.threads}; data in ${tmpdir()}; gen W = time in the lazy weight function (included in build and fromGraph)`,
      'build = writeOnnxModel (generate, serialise, write, fsync); load = ort.InferenceSession.create from the file;',
      'fromGraph = Session.fromGraph end to end (both of those + temp dir); run = median of timed runs after the checked first run',
      `RSS loaded = resident set right after the session was created${(globalThis as { gc?: unknown }).gc ? ', after a full GC' : ' (the JS copy of W may not be collected yet: run node --expose-gc to collect it first)'};`,
      'peak RSS = the process maximum so far (includes earlier phases and suites)',
      leftovers.length ? `WARNING: new ${leftovers.join(', ')} in ${tmpdir()} (left by Session.fromGraph, or made by a concurrent process)` : 'Session.fromGraph left no egret-model-* temp dir behind',
    ],
    details,
  };
}

export const largeGraphSuite: Suite = {
  name: 'large-graph',
  description: 'a MatMul with > 2 GB of fp32 weights builds via external data, runs, outputs checked exactly',
  quick: false,
  options: {
    m: '=M rows of x (default 4)',
    k: '=K rows of W (default 16384)',
    n: '=N columns of W (default 33000: W = 2.16 GB)',
    split: 'W as two weights of N/2 columns joined by Concat (no single weight ≥ 2 GB)',
    'skip-phases': 'only the Session.fromGraph phase (skip writeOnnxModel + create timed apart)',
    cache: 'also Session.fromGraph with a cache dir: a miss (ORT saves the optimised model) then a hit',
  },
  run,
};
