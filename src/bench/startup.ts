/**
 * Suite `startup` (issue #13, not quick: writes a 13.5 GB checkpoint, needs ~8 GB of memory and ~10 minutes):
 * LLaMA-7B as a user runs it. A random HF LLaMA with LLaMA-7B's exact shapes (32 layers, hidden 4096,
 * intermediate 11008, 32 heads, vocabulary 32000) stored as bf16 in three safetensors shards with their index, as
 * transformers saves it (bench/random-llama.ts), plus a tokenizer.json that decodes every id. Then
 * `egret generate --model DIR --dtype q4 --ids <100 ids> --max-new-tokens 16 --ignore-eos --json`, each run a new
 * process with the cache in a folder of its own:
 *
 *   first start   the cache empty: read, quantise, optimise, cache, answer; wall time of the whole command
 *   later start   the cache filled by the first (median of --later runs)
 *   peak RSS      of each command (worker threads included; bench/peak-rss.ts), against the resident model: the
 *                 bytes egret keeps (q4 codes and scales of every linear layer and the LM head, and the bf16
 *                 embedding table)
 *   decode        ms/token of the later starts (decode_ms ÷ the 15 steps after the prefill) against the roofline:
 *                 weight and cache bytes a step reads ÷ the memory bandwidth measured in this process (bench/llama.ts)
 *
 * Options: --dir=PATH (default: os.tmpdir()/egret-bench-llama7b-bf16; kept for later runs: delete it after),
 * --dtype=q4, --later=N (default 2).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linearWeightBytes, type ComputeDtype } from '../models/linear.js';
import { llamaConfigFromHf, readJson } from '../models/llama/config.js';
import { summarize, type Report, type Suite, type SuiteContext } from './harness.js';
import { BANDWIDTH_BYTES, bandwidthProbe, decodeWeightBytes } from './llama.js';
import { writeRandomLlama, writeRandomTokenizer } from './random-llama.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HOOK = new URL('./peak-rss.js', import.meta.url).href;
const LLAMA_7B = { hidden: 4096, intermediate: 11008, heads: 32, layers: 32, vocab: 32000 } as const;
const PROMPT = 100;
const NEW_TOKENS = 16;
const GOALS = { first: 120, later: 20, rss: 1.3 };

/** Seconds of a run spent before the prompt's prefill: process start, loading, the cache. */
const loadS = (r: Run) => r.wallS - (r.prefillMs + r.decodeMs) / 1000;

interface Run {
  wallS: number;
  peakRss: number;
  prefillMs: number;
  decodeMs: number;
}

/** One `egret generate` as a user runs it, with its wall time and peak RSS. */
async function generate(dir: string, dtype: string, cacheDir: string): Promise<Run> {
  const ids = Array.from({ length: PROMPT }, (_, i) => (i * 7919) % LLAMA_7B.vocab).join(',');
  const rssFile = join(cacheDir, '..', `peak-rss-${process.pid}-${Date.now()}`);
  const args = ['--import', HOOK, join(ROOT, 'bin/egret'), 'generate', '--model', dir, '--dtype', dtype, '--ids', ids, '--max-new-tokens', String(NEW_TOKENS), '--ignore-eos', '--json'];
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, EGRET_CACHE_DIR: cacheDir, EGRET_PEAK_RSS_FILE: rssFile } });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const wallS = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`egret generate exited ${code}:\n${stderr}`);
  const stats = (JSON.parse(stdout) as { stats: { prefill_ms: number; decode_ms: number } }).stats;
  const peakRss = Number(await readFile(rssFile, 'utf8'));
  await rm(rssFile, { force: true });
  return { wallS, peakRss, prefillMs: stats.prefill_ms, decodeMs: stats.decode_ms };
}

async function run(ctx: SuiteContext): Promise<Report> {
  const dir = typeof ctx.options.dir === 'string' ? ctx.options.dir : join(tmpdir(), 'egret-bench-llama7b-bf16');
  const dtype = String(ctx.options.dtype ?? 'q4') as ComputeDtype;
  const later = ctx.options.later === undefined ? 2 : Number(ctx.options.later);
  const t0 = performance.now();
  await writeRandomLlama(dir, LLAMA_7B, { dtype: 'BF16', shards: 3 }, ctx.log);
  await writeRandomTokenizer(dir, LLAMA_7B.vocab);
  const writeS = (performance.now() - t0) / 1000;
  const config = llamaConfigFromHf(await readJson(join(dir, 'config.json')), dir);
  const cacheRoot = await mkdtemp(join(tmpdir(), 'egret-bench-startup-'));
  const cacheDir = join(cacheRoot, 'cache');
  try {
    ctx.log(`first start (${dtype}, empty cache)`);
    const first = await generate(dir, dtype, cacheDir);
    const laters: Run[] = [];
    for (let i = 0; i < later; i++) {
      ctx.log(`later start ${i + 1}/${later}`);
      laters.push(await generate(dir, dtype, cacheDir));
    }
    ctx.log('memory bandwidth');
    const probe = await bandwidthProbe(ctx.threads);
    const probeMs: number[] = [];
    for (let i = 0; i < 12; i++) {
      const t = performance.now();
      await probe.run();
      if (i >= 2) probeMs.push(performance.now() - t);
    }
    await probe.dispose();
    const bytesPerMs = BANDWIDTH_BYTES / summarize(probeMs).median;
    // A step reads every linear weight and the LM head, and the cache's slots (fp32, capacity 256 at ~116 tokens).
    const cacheBytes = config.layers * 2 * config.kvHeads * 256 * config.headDim * 4;
    const stepBytes = decodeWeightBytes(config, dtype) + cacheBytes;
    // The embedding table stays in the checkpoint's bfloat16 (CausalLM).
    const resident = decodeWeightBytes(config, dtype) + config.vocab * config.hidden * 2;
    const laterS = summarize(laters.map((r) => r.wallS)).median;
    const msPerToken = summarize(laters.map((r) => r.decodeMs / (NEW_TOKENS - 1))).median;
    const rooflineMs = stepBytes / bytesPerMs;
    const laterPeak = Math.max(...laters.map((r) => r.peakRss));
    const GB = 1e9;
    const rows: Report['rows'] = [
      { case: 'first start: whole command, s', value: first.wallS, reference: GOALS.first, ratio: first.wallS / GOALS.first, goal: `≤ ${GOALS.first} s`, ok: first.wallS <= GOALS.first ? 'yes' : 'NO' },
      { case: 'later start: whole command, s (median)', value: laterS, reference: GOALS.later, ratio: laterS / GOALS.later, goal: `≤ ${GOALS.later} s`, ok: laterS <= GOALS.later ? 'yes' : 'NO' },
      { case: 'first start: loading only (wall − prefill − decode), s', value: loadS(first), reference: null, ratio: null, goal: '', ok: '' },
      { case: 'later start: loading only (wall − prefill − decode), s', value: summarize(laters.map(loadS)).median, reference: null, ratio: null, goal: '', ok: '' },
      { case: 'peak RSS, first start, GB vs resident model', value: first.peakRss / GB, reference: resident / GB, ratio: first.peakRss / resident, goal: `≤ ${GOALS.rss}`, ok: first.peakRss / resident <= GOALS.rss ? 'yes' : 'NO' },
      { case: 'peak RSS, later start, GB vs resident model', value: laterPeak / GB, reference: resident / GB, ratio: laterPeak / resident, goal: `≤ ${GOALS.rss}`, ok: laterPeak / resident <= GOALS.rss ? 'yes' : 'NO' },
      { case: 'decode ms/token vs roofline ms', value: msPerToken, reference: rooflineMs, ratio: rooflineMs / msPerToken, goal: '', ok: '' },
      { case: 'prefill 100 tokens, ms (later starts)', value: summarize(laters.map((r) => r.prefillMs)).median, reference: null, ratio: null, goal: '', ok: '' },
    ];
    return {
      title: `LLaMA-7B shapes (random, bf16, 3 shards), egret generate --dtype ${dtype}, 100-token prompt, ${NEW_TOKENS} new tokens`,
      columns: [
        { key: 'case', label: 'case' },
        { key: 'value', label: 'egret', digits: 2 },
        { key: 'reference', label: 'reference', digits: 2 },
        { key: 'ratio', label: 'ratio', digits: 2 },
        { key: 'goal', label: 'goal' },
        { key: 'ok', label: 'met' },
      ],
      rows,
      notes: [
        `threads ${ctx.threads} (cores ${availableParallelism()}); checkpoint ${dir} (${writeS.toFixed(0)} s to write, or reused); cache in a fresh folder`,
        `resident model = ${dtype} linear weights and LM head (${(decodeWeightBytes(config, dtype) / GB).toFixed(2)} GB, codes + fp32 scale per 32) + bf16 embedding table (${((config.vocab * config.hidden * 2) / GB).toFixed(2)} GB)`,
        `roofline: ${(stepBytes / GB).toFixed(2)} GB a step (weights + ${(cacheBytes / GB).toFixed(2)} GB of cache slots) ÷ ${(bytesPerMs / 1e6).toFixed(1)} GB/s (fp32 ORT MatMul streaming 512 MiB); ratio = roofline ms ÷ egret ms`,
        `every run: first ${first.wallS.toFixed(1)} s / ${(first.peakRss / GB).toFixed(2)} GB; later ${laters.map((r) => `${r.wallS.toFixed(1)} s / ${(r.peakRss / GB).toFixed(2)} GB`).join(', ')}`,
        `linear weight bytes per layer at ${dtype}: ${((linearWeightBytes(config.intermediate, config.hidden, dtype) * 3 + linearWeightBytes(config.hidden, config.hidden, dtype) * 4) / 1e6).toFixed(0)} MB`,
      ],
      details: { first, laters, bytesPerMs, stepBytes, resident },
    };
  } finally {
    await rm(cacheRoot, { recursive: true, force: true });
  }
}

export const startupSuite: Suite = {
  name: 'startup',
  description: 'LLaMA-7B shapes (random bf16, 3 shards) as a user runs it: first and later start, peak RSS, decode vs roofline',
  quick: false,
  options: {
    dir: '=PATH where the 13.5 GB checkpoint is written (default os.tmpdir()/egret-bench-llama7b-bf16; delete it after)',
    later: '=N later starts (default 2)',
    dtype: '=q4 weight type (q8, q4; fp32 needs 27 GB of memory)',
  },
  run,
};
