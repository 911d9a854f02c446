/**
 * Entry of `npm run bench`:
 *
 *   node dist/src/bench/run.js [suite ...] [--threads N] [--reps N] [--warmup N] [--json] [--out FILE] [--list]
 *
 * With no suite named, runs every quick suite; `all` runs every suite. Prints one table per suite on stdout
 * (on stderr instead with --json, which prints the JSON document on stdout); --out FILE also writes the JSON.
 * Suite-specific switches are passed as --key=value or --flag (see each suite's file).
 *
 * Adding a suite: write src/bench/<name>.ts exporting a `Suite` (see harness.ts), import it here, add it to SUITES.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { closestName } from '../errors.js';
import { formatReport, type Report, type Suite, type SuiteContext } from './harness.js';
import { ort } from '../runtime/session.js';
import { matmulSuite } from './matmul.js';
import { largeGraphSuite } from './large-graph.js';
import { llamaSuite } from './llama.js';
import { quantSuite } from './quant.js';
import { vtwSuite } from './vtw.js';
import { mraSuite } from './mra.js';
import { lavinSuite } from './lavin.js';
import { lavinTrainSuite } from './lavin-train.js';
import { serveSuite } from './serve.js';
import { startupSuite } from './startup.js';

/** The registry: every suite, in the order they run. */
const SUITES: readonly Suite[] = [matmulSuite, largeGraphSuite, llamaSuite, quantSuite, vtwSuite, mraSuite, lavinSuite, lavinTrainSuite, serveSuite, startupSuite];

const USAGE = `usage: egret bench [suite ...] [options]   (in a checkout also: npm run bench -- [suite ...] [options])

  suite            a suite name (default: every quick suite; 'all': every suite)
  --threads N      ORT intra-op threads (default: all cores, ${availableParallelism()} here)
  --reps N         timed repetitions (default: each suite's own)
  --warmup N       untimed warm-up runs (default: each suite's own)
  --json           print the JSON document on stdout (tables go to stderr)
  --out FILE       also write the JSON document to FILE
  --list           list the suites and exit
  --key=value      suite-specific option (see the suite's file)

suites:
${SUITES.map((s) => [
    `  ${s.name.padEnd(14)} ${s.quick ? '' : '(not quick) '}${s.description}`,
    ...Object.entries(s.options ?? {}).map(([k, help]) => `      --${k.padEnd(12)} ${help}`),
  ].join('\n')).join('\n')}
`;

interface Args {
  suites: Suite[];
  threads: number;
  reps?: number;
  warmup?: number;
  json: boolean;
  out?: string;
  options: Record<string, string | true>;
}

export class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args | 'list' | 'help' {
  const names: string[] = [];
  const options: Record<string, string | true> = {};
  let threads = availableParallelism();
  let reps: number | undefined;
  let warmup: number | undefined;
  let json = false;
  let out: string | undefined;
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) throw new UsageError(`${flag} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      names.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--help': return 'help';
      case '--list': return 'list';
      case '--json': json = true; break;
      case '--out': out = value(); if (!out) throw new UsageError('--out needs a file name'); break;
      case '--threads': threads = int(flag, value(), 1); break;
      case '--reps': reps = int(flag, value(), 1); break;
      case '--warmup': warmup = int(flag, value(), 0); break;
      default: options[flag.slice(2)] = inline ?? true;
    }
  }
  let suites: Suite[];
  if (names.length === 0) suites = SUITES.filter((s) => s.quick);
  else if (names.includes('all')) suites = [...SUITES];
  else {
    suites = names.map((n) => {
      const s = SUITES.find((x) => x.name === n);
      const near = closestName(n, SUITES.map((x) => x.name));
      if (!s) throw new UsageError(`unknown suite '${n}' (${near ? `did you mean ${near}?` : `known: ${SUITES.map((x) => x.name).join(', ')}`})`);
      return s;
    });
  }
  for (const key of Object.keys(options)) {
    if (!suites.some((s) => s.options && key in s.options)) {
      const known = ['threads', 'reps', 'warmup', 'json', 'out', 'list', 'help', ...suites.flatMap((s) => Object.keys(s.options ?? {}))];
      const near = closestName(key, known);
      throw new UsageError(`unknown option --${key} (${near ? `did you mean --${near}?` : `for the suites ${suites.map((s) => s.name).join(', ')}`})`);
    }
  }
  return { suites, threads, reps, warmup, json, out, options };
}

/** The machine and software the figures come from, for the JSON document and the table's header. */
function environment(threads: number): Record<string, string | number> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch { /* not a git checkout */ }
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    threads,
    /** 1-minute load average when the run started: others' work on the same cores shows here. */
    load: Number(loadavg()[0]!.toFixed(2)),
    commit,
  };
}

/** Runs the suites `argv` names; UsageError for bad arguments. Returns the exit code (1 when a suite failed). */
export async function runBench(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args === 'help' || args === 'list') {
    process.stdout.write(USAGE);
    return 0;
  }
  const { suites, threads, reps, warmup, json, out, options } = args;
  const env = environment(threads);
  const print = (text: string) => (json ? process.stderr : process.stdout).write(text);
  print(`# egret benchmarks — ${Object.entries(env).map(([k, v]) => `${k}: ${v}`).join(', ')}\n\n`);

  const results: { suite: string; report?: Report; error?: string; seconds: number }[] = [];
  for (const suite of suites) {
    const ctx: SuiteContext = {
      threads, reps, warmup, options,
      log: (message) => process.stderr.write(`[${suite.name}] ${message}\n`),
    };
    const t0 = Date.now();
    try {
      const report = await suite.run(ctx);
      const seconds = (Date.now() - t0) / 1000;
      results.push({ suite: suite.name, report, seconds });
      print(`${formatReport(suite.name, report)}  (${seconds.toFixed(1)} s; load average now ${loadavg()[0]!.toFixed(2)})\n\n`);
    } catch (e) {
      const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
      results.push({ suite: suite.name, error, seconds: (Date.now() - t0) / 1000 });
      print(`## ${suite.name}: FAILED\n\n${error}\n\n`);
    }
  }
  const doc = JSON.stringify({ environment: env, results }, null, 2);
  if (json) process.stdout.write(`${doc}\n`);
  if (out) await writeFile(out, `${doc}\n`);
  return results.some((r) => r.error) ? 1 : 0;
}

// As a script (npm run bench): usage errors print the usage. `egret bench` calls runBench itself.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runBench(process.argv.slice(2)).catch((e: unknown) => {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n\n${USAGE}`);
    return 2;
  });
}
