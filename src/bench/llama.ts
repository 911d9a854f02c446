/**
 * Suite `llama` (issue #3, not quick: a 2.7 GB random model in os.tmpdir(), several GB of memory, minutes): a
 * random LLaMA with 7B's layer shapes (hidden 4096, intermediate 11008, 32 heads; --layers, default 2) and a
 * 32000-token vocabulary, fp32 and q4, each figure against a baseline measured in the same run, interleaved:
 *
 *   prefill    a 512-token prefill (fresh cache, logits of the last token), GFLOP/s by decoderFlops, against one
 *              raw ORT product of the MLP's shape [512×4096]·[4096×11008] (MatMul in fp32, MatMulNBits with
 *              egret's block size and accuracy level in q4); goal ≥ 0.8
 *   decode     one step at batch 1 over a cache of 100 and of 2000 tokens (the cache is rewound after each
 *              step, so every step is the same), tokens/s against the roofline: bytes a step must read (every
 *              linear weight, the LM head included, and the cached keys and values) ÷ memory bandwidth, measured
 *              in the same rounds by an fp32 ORT MatMul streaming a 512 MiB weight; goal ≥ 0.7 in q4
 *              quantised, also against the bare MatMulNBits products of the same weights at M=1 (one ORT session,
 *              nothing else): what the kernel alone reaches, so that egret's own overhead shows apart
 *   torch      where /usr/bin/python3 (--python) has torch: the same weights in PyTorch (src/bench/torch_llama.py,
 *              fp32, same threads), prefill and both decode steps in the same rounds as egret's fp32
 *
 * Options: --layers=N (2–4), --dtypes=fp32,q4, --python=PATH, --no-torch, --pause=MS (default 20).
 */
import { availableParallelism } from 'node:os';
import { Graph } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { quantizeBlockwise, quantizedWeight } from '../graph/quantize.js';
import { decoderFlops } from '../models/flops.js';
import { linearWeightBytes, type ComputeDtype } from '../models/linear.js';
import type { LlamaConfig } from '../models/llama/config.js';
import { CausalLM, openLlama } from '../models/llama/load.js';
import { Session, ort } from '../runtime/session.js';
import { interleave, pairedRatio, type Interleaved, type Report, type Suite, type SuiteContext } from './harness.js';
import { LLAMA_7B_LAYER, randomLlamaDir } from './random-llama.js';
import { DEFAULT_PYTHON, TorchBaseline } from './torch-baseline.js';

const PROMPT = 512;
const CONTEXTS = [100, 2000] as const;
const VOCAB = 32000;
export const BANDWIDTH_BYTES = 512 * 2 ** 20;
const PREFILL_GOAL = 0.8;
const DECODE_GOAL_Q4 = 0.7;

/** The prompt's token ids, the same in torch_llama.py: i · 7919 mod vocab. */
export const promptIds = (n: number, vocab: number) => Array.from({ length: n }, (_, i) => (i * 7919) % vocab);

/** Weight bytes a decode step reads: every linear layer and the LM head (one embedding row is negligible). */
export function decodeWeightBytes(c: LlamaConfig, dtype: ComputeDtype): number {
  const { hidden: d, heads, kvHeads, headDim, intermediate } = c;
  const layer = linearWeightBytes(heads * headDim, d, dtype) * 2 + linearWeightBytes(kvHeads * headDim, d, dtype) * 2 +
    linearWeightBytes(intermediate, d, dtype) * 2 + linearWeightBytes(d, intermediate, dtype);
  return c.layers * layer + linearWeightBytes(c.vocab, d, dtype);
}

/** Bytes of cached keys and values a step reads over a cache of `capacity` slots (fp32). */
const cacheBytes = (c: LlamaConfig, capacity: number) => c.layers * 2 * c.kvHeads * capacity * c.headDim * 4;

/** A fresh-cache prefill of `ids`, logits of the last token only (as generation does). */
function prefiller(lm: CausalLM, ids: readonly number[]): () => Promise<unknown> {
  const embeds = lm.embed(ids);
  const positions = ids.map((_, i) => i);
  return () => lm.decoder.forward(lm.decoder.newCache(1), { embeds, seq: ids.length, counts: [ids.length], positions: [positions], logitRows: [[ids.length - 1]] });
}

/**
 * One decode step over a cache holding `context` tokens in every layer, rewound after each call so that every
 * call is the same step. The cached values are zeros (a step's time does not depend on them). `capacity` is the
 * cache's own for context + 1 tokens: attention reads every slot, masked ones included.
 */
function stepper(lm: CausalLM, context: number): { step: () => Promise<unknown>; capacity: number } {
  const cache = lm.decoder.newCache(1);
  const groups = [...new Set(cache.layerGroups)];
  for (const group of groups) {
    cache.reserve(group, context + 1);
    cache.advance(group, [context]);
  }
  const embeds = lm.embed([context % lm.config.vocab]);
  const step = async () => {
    await lm.decoder.forward(cache, { embeds, seq: 1, counts: [1], positions: [[context]], logitRows: [[0]] });
    for (const group of groups) cache.lengths[group]![0] = context;
  };
  return { step, capacity: cache.capacityOf(groups[0]!) };
}

/** A contender with ORT resources to release. */
export interface Contender {
  run(): Promise<unknown>;
  dispose(): Promise<void>;
}

/**
 * Shapes [out, in] of the decoder's products, in the order a call runs them, the LM head last: q, k and v are one
 * product, gate and up another (stackedLinear).
 */
function linearShapes(c: LlamaConfig): [number, number][] {
  const { hidden: d, heads, kvHeads, headDim, intermediate: i } = c;
  const layer: [number, number][] = [[(heads + 2 * kvHeads) * headDim, d], [d, heads * headDim], [2 * i, d], [d, i]];
  return [...Array.from({ length: c.layers }, () => layer).flat(), [c.vocab, d]];
}

/**
 * Bare ORT products x_j[m, in_j] · W_jᵀ for weights of the given shapes, one session, nothing else in the graph:
 * MatMul in fp32, MatMulNBits (egret's block size and accuracy level) when quantised — the kernels' own speed.
 */
async function rawProducts(shapes: readonly [number, number][], m: number, dtype: ComputeDtype, threads: number): Promise<Contender> {
  const g = new Graph('raw-products');
  const feeds: Record<string, ort.Tensor> = {};
  shapes.forEach(([n, k], j) => {
    const x = g.input(`x${j}`, 'float32', [m, k]);
    feeds[`x${j}`] = new ort.Tensor('float32', new Float32Array(m * k).fill(0.01), [m, k]);
    const w = new Float32Array(n * k).map((_, i) => (((i + j) * 7919) % 1000) / 25000 - 0.02);
    const y = dtype === 'fp32'
      ? op.matmul(x, g.weight(`w${j}`, 'float32', [k, n], new Uint8Array(w.buffer)))
      : op.matmulNBits(x, quantizedWeight(g, `w${j}`, quantizeBlockwise(w, n, k, dtype === 'q4' ? 4 : 8)));
    g.output(y, `y${j}`);
  });
  const session = await Session.fromGraph(g, { threads });
  return { run: () => session.run(feeds), dispose: () => session.dispose() };
}

/**
 * The bandwidth probe: an fp32 matrix-vector product [1×8192]·[8192×16384] whose 512 MiB weight is far larger
 * than the caches. MLAS's SGEMV streams it at the memory's pace (an ORT ReduceSum of the same bytes measured
 * no faster here), so bytes ÷ time is the bandwidth a decode step can hope for.
 */
export async function bandwidthProbe(threads: number): Promise<Contender> {
  const k = 8192;
  const n = BANDWIDTH_BYTES / 4 / k;
  const g = new Graph('stream');
  const x = g.input('x', 'float32', [1, k]);
  g.output(op.matmul(x, g.weight('w', 'float32', [k, n], new Uint8Array(new Float32Array(k * n).fill(1e-3).buffer))), 'y');
  const session = await Session.fromGraph(g, { threads });
  const feed = { x: new ort.Tensor('float32', new Float32Array(k).fill(1), [1, k]) };
  return { run: () => session.run(feed), dispose: () => session.dispose() };
}

const median = <K extends string>(m: Interleaved<K>, k: K) => m.times[k].median;

async function run(ctx: SuiteContext): Promise<Report> {
  const layers = ctx.options.layers === undefined ? 2 : Number(ctx.options.layers);
  if (!Number.isInteger(layers) || layers < 1) throw new Error('--layers needs a positive integer');
  const dtypes = String(ctx.options.dtypes ?? 'fp32,q4').split(',') as ComputeDtype[];
  if (dtypes.some((d) => !['fp32', 'q8', 'q4'].includes(d))) throw new Error('--dtypes takes fp32, q8, q4');
  const pauseMs = ctx.options.pause === undefined ? 20 : Number(ctx.options.pause);
  const python = typeof ctx.options.python === 'string' ? ctx.options.python : DEFAULT_PYTHON;
  const dir = await randomLlamaDir({ ...LLAMA_7B_LAYER, layers, vocab: VOCAB }, ctx.log);
  const rows: Report['rows'] = [];
  const notes: string[] = [];
  const details: Record<string, unknown> = { dir, layers, pauseMs };

  for (const dtype of dtypes) {
    ctx.log(`${dtype}: building the model`);
    const t0 = performance.now();
    const lm = await CausalLM.build(await openLlama(dir), { dtype, threads: ctx.threads });
    const buildS = (performance.now() - t0) / 1000;
    const c = lm.config;
    let torch: TorchBaseline | undefined;
    const sessions: Contender[] = [];
    const own = (contender: Contender) => (sessions.push(contender), () => contender.run());
    if (dtype === 'fp32' && ctx.options['no-torch'] !== true) {
      ctx.log(`starting PyTorch (${python})`);
      const started = await TorchBaseline.start(python, dir, ctx.threads);
      if (typeof started === 'string') notes.push(`PyTorch baseline skipped: ${started}`);
      else torch = started;
    }
    try {
      const ids = promptIds(PROMPT, c.vocab);
      if (torch) {
        // Same weights, same answer, or the comparison means nothing.
        const few = ids.slice(0, 16);
        const theirs = JSON.parse(await torch.request(`logits ${few.join(',')}`)) as number[];
        const ours = prefiller(lm, few);
        const { logits } = (await ours()) as { logits: Float32Array };
        const diff = theirs.reduce((m, v, i) => Math.max(m, Math.abs(v - logits[i]!)), 0);
        notes.push(`PyTorch ${torch.info.torch} (${torch.info.threads} threads) vs egret fp32, last logits of a 16-token prefill: max |Δ| = ${diff.toExponential(2)}`);
        details.torchLogitDiff = diff;
      }

      ctx.log(`${dtype}: prefill ${PROMPT} vs the raw product${torch ? ' and PyTorch' : ''}`);
      const raw = own(await rawProducts([[c.intermediate, c.hidden]], PROMPT, dtype, ctx.threads));
      const prefill: Record<string, () => unknown> = { egret: prefiller(lm, ids), raw };
      if (torch) prefill.torch = () => torch!.request(`prefill ${PROMPT}`);
      const p = await interleave(prefill, { warmup: ctx.warmup ?? 1, reps: ctx.reps ?? 5, pauseMs });
      const flops = decoderFlops(c, Array(c.layers).fill(PROMPT), Array(c.layers).fill(PROMPT), 1);
      const rawFlops = 2 * PROMPT * c.hidden * c.intermediate;
      const gflops = flops / (median(p, 'egret') * 1e6);
      const rawGflops = rawFlops / (median(p, 'raw') * 1e6);
      const prefillRatio = pairedRatio(p, 'raw', 'egret').median * (flops / rawFlops);
      rows.push({ case: `prefill ${PROMPT}: GFLOP/s vs raw product`, dtype, egret: gflops, baseline: rawGflops, ratio: prefillRatio, goal: `≥ ${PREFILL_GOAL}`, ok: prefillRatio >= PREFILL_GOAL ? 'yes' : 'NO' });
      if (torch) rows.push({ case: `prefill ${PROMPT}: ms vs PyTorch`, dtype, egret: median(p, 'egret'), baseline: median(p, 'torch'), ratio: pairedRatio(p, 'torch', 'egret').median, goal: 'speed-up', ok: '' });

      ctx.log(`${dtype}: decode steps at contexts ${CONTEXTS.join(', ')} vs memory bandwidth${torch ? ' and PyTorch' : ''}`);
      const decode: Record<string, () => unknown> = { bandwidth: own(await bandwidthProbe(ctx.threads)) };
      const capacity: Record<number, number> = {};
      for (const n of CONTEXTS) {
        const s = stepper(lm, n);
        decode[`egret${n}`] = s.step;
        capacity[n] = s.capacity;
      }
      // Quantised, the products' kernel is not the bandwidth probe's: its own speed on the same weight shapes.
      if (dtype !== 'fp32') decode.products = own(await rawProducts(linearShapes(c), 1, dtype, ctx.threads));
      if (torch) for (const n of CONTEXTS) decode[`torch${n}`] = () => torch!.request(`decode ${n}`);
      const d = await interleave(decode, { warmup: ctx.warmup ?? 3, reps: ctx.reps ?? 30, pauseMs });
      const bytesPerMs = BANDWIDTH_BYTES / median(d, 'bandwidth');
      const weights = decodeWeightBytes(c, dtype);
      for (const n of CONTEXTS) {
        const ms = median(d, `egret${n}`);
        const bytes = weights + cacheBytes(c, capacity[n]!);
        const rooflineMs = bytes / bytesPerMs;
        const ratio = pairedRatio(d, 'bandwidth', `egret${n}`).median * (bytes / BANDWIDTH_BYTES);
        rows.push({
          case: `decode @${n}: tokens/s vs roofline`, dtype, egret: 1000 / ms, baseline: 1000 / rooflineMs, ratio,
          goal: dtype === 'q4' ? `≥ ${DECODE_GOAL_Q4}` : '', ok: dtype === 'q4' ? (ratio >= DECODE_GOAL_Q4 ? 'yes' : 'NO') : '',
        });
        if (dtype !== 'fp32') rows.push({ case: `decode @${n}: ms vs bare products`, dtype, egret: ms, baseline: median(d, 'products'), ratio: pairedRatio(d, 'products', `egret${n}`).median, goal: '', ok: '' });
        if (torch) rows.push({ case: `decode @${n}: ms vs PyTorch`, dtype, egret: ms, baseline: median(d, `torch${n}`), ratio: pairedRatio(d, `torch${n}`, `egret${n}`).median, goal: 'speed-up', ok: '' });
      }
      const [short, long] = CONTEXTS;
      const [capShort, capLong] = [capacity[short]!, capacity[long]!];
      const expected = (weights + cacheBytes(c, capLong)) / (weights + cacheBytes(c, capShort));
      // A step that copied the cache (torch.cat) would also read and write it once more.
      const copying = (weights + 3 * cacheBytes(c, capLong)) / (weights + 3 * cacheBytes(c, capShort));
      notes.push(`${dtype}: @${long} / @${short} step-time ratio if each step copied the cache: ${copying.toFixed(2)}`);
      const timeRatio = pairedRatio(d, `egret${long}`, `egret${short}`).median;
      rows.push({ case: `decode step ms @${long} / @${short}`, dtype, egret: timeRatio, baseline: expected, ratio: expected / timeRatio, goal: 'bytes ratio', ok: '' });
      notes.push(`${dtype}: built in ${buildS.toFixed(1)} s; decode reads ${(weights / 1e6).toFixed(0)} MB of weights per token (LM head ${(linearWeightBytes(c.vocab, c.hidden, dtype) / 1e6).toFixed(0)} MB of it) ` +
        `+ ${(cacheBytes(c, capShort) / 1e6).toFixed(1)} / ${(cacheBytes(c, capLong) / 1e6).toFixed(1)} MB of cache at ${short} / ${long} (capacity ${capShort} / ${capLong}); bandwidth ${(bytesPerMs / 1e6).toFixed(1)} GB/s`);
      details[dtype] = { buildS, prefill: p.times, decode: d.times, flops, rawFlops, weightBytes: weights, bandwidthGBs: bytesPerMs / 1e6 };
    } finally {
      await torch?.stop();
      for (const s of sessions) await s.dispose();
      await lm.dispose();
    }
  }
  return {
    title: `random LLaMA, 7B layer shapes (hidden ${LLAMA_7B_LAYER.hidden}, intermediate ${LLAMA_7B_LAYER.intermediate}, ${LLAMA_7B_LAYER.heads} heads), ${layers} layers, vocab ${VOCAB}, batch 1`,
    columns: [
      { key: 'case', label: 'case' },
      { key: 'dtype', label: 'dtype' },
      { key: 'egret', label: 'egret', digits: 2 },
      { key: 'baseline', label: 'baseline', digits: 2 },
      { key: 'ratio', label: 'ratio', digits: 3 },
      { key: 'goal', label: 'goal' },
      { key: 'ok', label: 'met' },
    ],
    rows,
    notes: [
      `threads ${ctx.threads} (cores ${availableParallelism()}); medians of interleaved rounds, ${pauseMs} ms idle before each call; model in ${dir}`,
      'prefill: GFLOP/s = decoderFlops (linear layers, attention, LM head of 1 row) / median; raw product = one [512×4096]·[4096×11008] ORT op (MatMul fp32, MatMulNBits q4/q8); ratio = egret / raw',
      'decode: roofline = (weight bytes + cache bytes read) / bandwidth (fp32 ORT MatMul [1×8192]·[8192×16384], 512 MiB of weight, same rounds); ratio = egret tokens/s / roofline tokens/s',
      'bare products (q4/q8): the decoder\'s linear-layer and LM-head MatMulNBits at M=1 in one ORT session and nothing else; ratio = their ms / egret ms',
      'ratios are medians of per-round ratios (each round runs every contender once), so load changes between rounds cancel',
      '@2000 / @100: egret = step-time ratio; baseline = the ratio of bytes read (what a step that copies nothing costs); ratio = bytes ratio / time ratio',
      'vs PyTorch: ratio = PyTorch ms / egret ms (> 1: egret faster); PyTorch grows its cache with torch.cat as transformers does',
      ...notes,
    ],
    details,
  };
}

export const llamaSuite: Suite = {
  name: 'llama',
  description: 'random LLaMA with 7B layer shapes: prefill GFLOP/s vs a raw product, decode vs the memory roofline, vs PyTorch',
  quick: false,
  options: {
    layers: '=N decoder layers of 7B shape (default 2; 2.7 GB fp32 on disk for 2)',
    dtypes: '=fp32,q4 weight types to run (fp32, q8, q4)',
    python: `=PATH interpreter with torch for the PyTorch baseline (default ${DEFAULT_PYTHON})`,
    'no-torch': 'skip the PyTorch baseline',
    pause: '=MS idle time before each timed call (default 20)',
  },
  run,
};
