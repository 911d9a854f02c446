/**
 * Suite `serve` (issue #13, not quick: the 2.7 GB random model of the `llama` suite, minutes): `egret serve` on a
 * random LLaMA with 7B's layer shapes (--layers, default 2) at --dtype q4, driven over HTTP by 1, 2, 4 and 8
 * concurrent streaming chat requests (each with its own seed and temperature), in interleaved rounds:
 *
 *   aggregate   tokens/s of all streams together (completion tokens ÷ time from the requests' start to the last
 *               one's end), against one stream alone in the same round; goal ≥ 2.5 at 4 streams
 *   TTFT        each stream's time to its first text, the worst of each round, against the bound 2 × one stream's
 *               own TTFT + one prefill (both from the 1-stream run of the same round); goal: worst ≤ bound
 *
 * The server's /metrics gives the mean batch size of each run (decoded rows ÷ decode calls).
 *
 * Options: --streams=1,2,4,8, --rounds=N (default 3), --tokens=N new tokens per stream (default 64),
 * --prompt=N prompt tokens (default 100), --layers=N (default 2), --dtype=q4, --stagger=MS (stream i starts
 * i × MS after the first; default 0, all at once).
 */
import { spawn } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { summarize, type Report, type Suite, type SuiteContext } from './harness.js';
import { LLAMA_7B_LAYER, randomLlamaDir, writeRandomTokenizer } from './random-llama.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VOCAB = 32000;
const TTFT_GOAL_AT = 4;
const AGGREGATE_GOAL = 2.5;

interface Server {
  url: string;
  stop(): Promise<void>;
}

/** `egret serve` as a user starts it, on a free port; resolves once it listens. */
function startServer(args: string[], env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<Server> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/egret'), 'serve', '--port', '0', ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        log(`server: ${m[1]}`);
        resolve({ url: m[1]!, stop: async () => { child.kill('SIGTERM'); await exited; } });
      }
    });
    void exited.then(() => reject(new Error(`egret serve exited before listening:\n${stderr}`)));
  });
}

interface StreamResult {
  ttftMs: number;
  endMs: number;
  tokens: number;
  prefillMs: number;
}

/** One streaming chat completion; times relative to `t0`. */
async function stream(url: string, i: number, prompt: string, tokens: number, t0: number): Promise<StreamResult> {
  const body = {
    model: 'bench', messages: [{ role: 'user', content: prompt }], max_tokens: tokens, ignore_eos: true, stream: true,
    stream_options: { include_usage: true }, temperature: 0.5 + 0.1 * (i % 5), seed: i,
  };
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok || !res.body) throw new Error(`request ${i}: HTTP ${res.status} ${await res.text()}`);
  let ttftMs = NaN;
  let usage: { completion_tokens: number } | undefined;
  let prefillMs = NaN;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const data = JSON.parse(event.slice(6)) as { choices: { delta: { content?: string } }[]; usage?: { completion_tokens: number }; egret?: { prefill_ms: number } };
      if (Number.isNaN(ttftMs) && data.choices[0]?.delta.content) ttftMs = performance.now() - t0;
      if (data.usage) usage = data.usage;
      if (data.egret) prefillMs = data.egret.prefill_ms;
    }
  }
  return { ttftMs, endMs: performance.now() - t0, tokens: usage?.completion_tokens ?? 0, prefillMs };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

interface Run {
  aggregate: number;
  perStream: number;
  worstTtft: number;
  aloneTtft: number;
  prefill: number;
  meanBatch: number;
}

/**
 * n concurrent streams, stream i starting i × staggerMs after the first (0: all at once); prompts differ per stream
 * but have the same length (one token per character). Each stream's times count from its own start.
 */
async function measure(url: string, n: number, promptTokens: number, tokens: number, staggerMs: number): Promise<Run> {
  const [steps0, rows0] = [await metric(url, 'egret_decode_steps_total'), await metric(url, 'egret_decode_rows_total')];
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const text = `${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(8)}`.slice(0, promptTokens - 1); // + BOS
    if (staggerMs > 0) await sleep(i * staggerMs);
    const start = performance.now();
    return { start: start - t0, ...(await stream(url, i, text, tokens, start)) };
  }));
  const steps = (await metric(url, 'egret_decode_steps_total')) - steps0;
  const rows = (await metric(url, 'egret_decode_rows_total')) - rows0;
  const total = results.reduce((s, r) => s + r.tokens, 0);
  const wall = Math.max(...results.map((r) => r.start + r.endMs));
  return {
    aggregate: (1000 * total) / wall,
    perStream: summarize(results.map((r) => (1000 * r.tokens) / (r.endMs - r.ttftMs))).median,
    worstTtft: Math.max(...results.map((r) => r.ttftMs)),
    aloneTtft: results[0]!.ttftMs,
    prefill: results[0]!.prefillMs,
    meanBatch: rows / steps,
  };
}

async function run(ctx: SuiteContext): Promise<Report> {
  const streams = String(ctx.options.streams ?? '1,2,4,8').split(',').map(Number);
  if (!streams.includes(1) || streams.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--streams needs positive integers, 1 among them (the baseline)');
  const rounds = ctx.options.rounds === undefined ? (ctx.reps ?? 3) : Number(ctx.options.rounds);
  const tokens = ctx.options.tokens === undefined ? 64 : Number(ctx.options.tokens);
  const promptTokens = ctx.options.prompt === undefined ? 100 : Number(ctx.options.prompt);
  const layers = ctx.options.layers === undefined ? 2 : Number(ctx.options.layers);
  const dtype = String(ctx.options.dtype ?? 'q4');
  const staggerMs = ctx.options.stagger === undefined ? 0 : Number(ctx.options.stagger);
  const dir = await randomLlamaDir({ ...LLAMA_7B_LAYER, layers, vocab: VOCAB }, ctx.log);
  await writeRandomTokenizer(dir, VOCAB);
  const env = { ...process.env, EGRET_CACHE_DIR: join(tmpdir(), 'egret-bench-cache') };
  const most = Math.max(...streams);
  ctx.log(`starting egret serve (${dtype}, --concurrency ${most}); the first start quantises and caches the model`);
  const server = await startServer(['--model', dir, '--dtype', dtype, '--concurrency', String(most), '--threads', String(ctx.threads)], env, ctx.log);
  const byN = new Map<number, Run[]>(streams.map((n) => [n, []]));
  try {
    await measure(server.url, 1, promptTokens, 8, 0); // warm-up
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? streams : [...streams].reverse();
      for (const n of order) {
        ctx.log(`round ${r + 1}/${rounds}: ${n} stream${n > 1 ? 's' : ''}`);
        byN.get(n)!.push(await measure(server.url, n, promptTokens, tokens, staggerMs));
      }
    }
  } finally {
    await server.stop();
  }
  const alone = byN.get(1)!;
  const rows: Report['rows'] = [];
  for (const n of streams) {
    const runs = byN.get(n)!;
    const ratio = summarize(runs.map((x, r) => x.aggregate / alone[r]!.aggregate)).median;
    rows.push({
      case: `aggregate tokens/s, ${n} vs 1 stream`, egret: summarize(runs.map((x) => x.aggregate)).median, baseline: summarize(alone.map((x) => x.aggregate)).median,
      ratio, goal: n === TTFT_GOAL_AT ? `≥ ${AGGREGATE_GOAL}` : '', ok: n === TTFT_GOAL_AT ? (ratio >= AGGREGATE_GOAL ? 'yes' : 'NO') : '',
    });
  }
  for (const n of streams) {
    const runs = byN.get(n)!;
    // Per round: the worst stream's TTFT ÷ (2 × the lone stream's TTFT + its prefill).
    const ratios = runs.map((x, r) => x.worstTtft / (2 * alone[r]!.aloneTtft + alone[r]!.prefill));
    const ratio = Math.max(...ratios);
    rows.push({
      case: `worst TTFT ms, ${n} streams vs 2·alone + prefill`, egret: summarize(runs.map((x) => x.worstTtft)).median,
      baseline: summarize(alone.map((x) => 2 * x.aloneTtft + x.prefill)).median, ratio,
      goal: n <= TTFT_GOAL_AT ? '≤ 1 (every round)' : '', ok: n <= TTFT_GOAL_AT ? (ratio <= 1 ? 'yes' : 'NO') : '',
    });
  }
  for (const n of streams) {
    const runs = byN.get(n)!;
    rows.push({
      case: `per-stream decode tokens/s, ${n} streams (mean batch ${summarize(runs.map((x) => x.meanBatch)).median.toFixed(2)})`,
      egret: summarize(runs.map((x) => x.perStream)).median, baseline: summarize(alone.map((x) => x.perStream)).median,
      ratio: summarize(runs.map((x, r) => x.perStream / alone[r]!.perStream)).median, goal: '', ok: '',
    });
  }
  return {
    title: `egret serve, random LLaMA with 7B layer shapes, ${layers} layers, vocab ${VOCAB}, ${dtype}: ${streams.join(', ')} concurrent streams`,
    columns: [
      { key: 'case', label: 'case' },
      { key: 'egret', label: 'egret', digits: 1 },
      { key: 'baseline', label: 'baseline', digits: 1 },
      { key: 'ratio', label: 'ratio', digits: 2 },
      { key: 'goal', label: 'goal' },
      { key: 'ok', label: 'met' },
    ],
    rows,
    notes: [
      `threads ${ctx.threads} (cores ${availableParallelism()}); ${rounds} rounds, stream counts interleaved (reversed every other round); model in ${dir}`,
      `each stream: a ${promptTokens}-token prompt of its own, ${tokens} new tokens (ignore_eos), its own temperature and seed, streamed (SSE) over HTTP from one client process; ${staggerMs > 0 ? `stream i starts i × ${staggerMs} ms after the first` : 'all start at once'}`,
      'aggregate: all completion tokens ÷ (last stream end − start); ratio = median over rounds of (N streams ÷ 1 stream, same round)',
      'TTFT: start → first text chunk; bound = 2 × TTFT of the lone stream + its prefill_ms (same round); ratio = the worst round\'s worst stream ÷ its bound',
      'per-stream decode tokens/s: a stream\'s tokens ÷ (its end − its first text); mean batch = egret_decode_rows_total ÷ egret_decode_steps_total over the run',
    ],
    details: Object.fromEntries([...byN].map(([n, runs]) => [n, runs])),
  };
}

export const serveSuite: Suite = {
  name: 'serve',
  description: 'egret serve with 1, 2, 4, 8 concurrent streams on the 7B-shaped random model (continuous batching)',
  quick: false,
  options: {
    streams: '=1,2,4,8 concurrent streams to measure (1 is the baseline)',
    rounds: '=N interleaved rounds (default 3)',
    tokens: '=N new tokens per stream (default 64)',
    prompt: '=N prompt tokens per stream (default 100)',
    layers: '=N decoder layers of 7B shape (default 2)',
    dtype: '=q4 weight type (fp32, q8, q4)',
    stagger: '=MS stream i starts i × MS after the first (default 0: all at once)',
  },
  run,
};
