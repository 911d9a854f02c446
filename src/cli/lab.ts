/**
 * `egret lab [--quick]` (the miniature reproductions: train or reuse, score, report), `egret lab generate` and
 * `egret lab tokenizer` (the lab's generated datasets and its tiny models' tokenizer), `egret lab readout` (the MRA
 * decoder's read-out probed alone).
 */
import { existsSync } from 'node:fs';
import { writeFileAtomically } from '../io/file.js';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import {
  checkOutputFolder, LAB_TASKS, labTokenizerModel, writeScienceQaDataset, writeSmallPrintDataset, type DatasetOptions, type LabTask,
} from '../lab/datasets.js';
import { formatHelp, HelpRequested, parseCommandLine, type CommandHelp } from './args.js';
import { Progress } from './progress.js';
import { defaultCacheDir } from '../runtime/cache-dir.js';
import { hasLabModels, machineDescription, runMraLab, type MraLabPlan } from '../lab/mra-lab.js';
import { runMmaLab } from '../lab/mma.js';
import { FULL_PLAN, QUICK_PLAN } from '../lab/plans.js';
import { labChecks, writeLabReport } from '../lab/report.js';
import { SHIPPED_MODELS_DIR } from '../lab/shipped.js';
import { READOUT_DEFAULTS, runReadoutProbe, type ReadoutLayout, type ReadoutProbeOptions } from '../lab/readout-probe.js';
import { VECTOR_STD } from '../lab/readout-vectors.js';

const GENERATE_USAGE = 'usage: egret lab generate --out DIR [--task smallprint|scienceqa] [--seed S] [--count N]';
const TOKENIZER_USAGE = 'usage: egret lab tokenizer --out FILE [--seed S] [--count N] [--vocab-size N]';

export const LAB_GENERATE_HELP: CommandHelp = {
  usage: GENERATE_USAGE,
  summary: 'Writes the generated tasks (docs/LAB.md, "Tasks"); the same seed and count give byte-identical files.',
  options: { out: { type: 'string' }, task: { type: 'string' }, seed: { type: 'string' }, count: { type: 'string' } },
  describe: {
    out: 'a new or empty folder; without --task it gets smallprint/ and scienceqa/',
    seed: 'seed of the dataset (integer, default 0)',
    count: 'samples of each task (default 100)',
  },
};

export const LAB_TOKENIZER_HELP: CommandHelp = {
  usage: TOKENIZER_USAGE,
  summary: "Writes the tiny models' SentencePiece tokenizer.model, BPE learnt from the tasks' text (docs/LAB.md).",
  options: { out: { type: 'string' }, seed: { type: 'string' }, count: { type: 'string' }, 'vocab-size': { type: 'string' } },
  describe: {
    out: 'the tokenizer.model file to write (not an existing one)',
    seed: 'seed of the text (integer, default 0)',
    count: 'samples of each task whose text it learns from (default 2000)',
  },
};

const READOUT_USAGE = 'usage: egret lab readout [--steps N] [--lr X] [--layout code|one|everywhere|whole] [--attention W] [--aid-layer L] [--first-until N] [--vector-std X] [--noise X] [--blocks] [--previous] [--sink] [--position W] [--position-layer L] [--give-place | --give-place-until N] [--place-aid W] [--decoder-layers N] [--seed S] [--threads N] [--out FILE]';

export const LAB_READOUT_HELP: CommandHelp = {
  usage: READOUT_USAGE,
  summary: "Trains the MRA plan's LLaMA alone, fresh, on synthetic visual tokens whose cells hold known characters, with the aids of the eleventh session's MRA plan unless told otherwise (READOUT_DEFAULTS), and logs its answer loss every 25 steps: does the decoder learn to read out the token its aided head looks at? (docs/LAB.md, Status)",
  options: {
    steps: { type: 'string' }, lr: { type: 'string' }, layout: { type: 'string' }, attention: { type: 'string' }, 'aid-layer': { type: 'string' },
    'first-until': { type: 'string' }, 'vector-std': { type: 'string' }, noise: { type: 'string' }, blocks: { type: 'boolean' }, previous: { type: 'boolean' }, sink: { type: 'boolean' }, position: { type: 'string' }, 'position-layer': { type: 'string' }, 'give-place': { type: 'boolean' }, 'give-place-until': { type: 'string' }, 'place-aid': { type: 'string' }, 'decoder-layers': { type: 'string' },
    seed: { type: 'string' }, threads: { type: 'string' }, out: { type: 'string' },
  },
  describe: {
    steps: 'training steps of batch 4 (default 600)',
    lr: 'peak learning rate, warm-up 20 steps then cosine (default 0.001)',
    layout: "code: the code over one or two cells, as the task's 32-px cells (default); one: a cell a character; everywhere: the first character in every cell; whole: the whole code in every cell",
    attention: "the attention aid's weight, 0 for none (default 1)",
    'aid-layer': "the decoder layer whose heads the aid points; negative counts from the last, written --aid-layer=-2 (default 0)",
    'first-until': "steps that score only the code's first character (default 300)",
    'vector-std': 'standard deviation of the synthetic vectors (default 0.05, about a fresh projector\'s output)',
    noise: 'standard deviation of fresh noise added to every token of every sample (default 0: clean tokens)',
    blocks: 'each place in the code gets its own block of the width, so that a linear map reads one place of a cell alone',
    previous: "key each character's vector by the character before it (the start for the first) instead of its place: the row's input token says what to ask for",
    sink: "at a code character's row, the aided heads other than its own are told to look at <s>",
    position: "the position aid's weight: a linear head on a decoder layer's rows told each code character's place, 0 for none (default 0)",
    'give-place': "hand each row that predicts a code character its place (a fixed vector added to its input): what a model does not have, to measure what working the place out costs",
    'give-place-until': "hand the place only until step N: in full for its first half, fading linearly to nothing over the second",
    'place-aid': "the place aid's weight, 0 for none: the position layer's rows told to hold the vector --give-place hands them (squared error), so that the decoder writes the crutch itself",
    'decoder-layers': "the LLaMA's layers (default: the MRA plan's, 3)",
    'position-layer': "the decoder layer the position aid reads; negative counts from the last (default 0)",
    seed: 'seed of the weights, the vectors and the samples (default 0)',
    out: 'a JSON file for the loss curve (not an existing one)',
  },
};

/** An integer option in [min, max]. */
function integer(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (!/^\d+$/.test(value) || x < min || x > max) throw new InputError(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  return x;
}

const seedOf = (value: string | undefined) => integer(value, 'seed', 0, 2 ** 32 - 1, 0);

async function generateCommand(args: string[]): Promise<void> {
  const { values } = parseCommandLine(args, LAB_GENERATE_HELP) as { values: { out?: string; task?: string; seed?: string; count?: string } };
  if (values.out === undefined) throw new InputError(`--out is required; ${GENERATE_USAGE}`);
  if (values.task !== undefined && !(LAB_TASKS as readonly string[]).includes(values.task)) {
    throw new InputError(`--task must be ${LAB_TASKS.join(' or ')}, not '${values.task}'`);
  }
  const seed = seedOf(values.seed);
  const count = integer(values.count, 'count', 1, 1_000_000, 100);
  const jobs: [LabTask, string][] = values.task === undefined ? LAB_TASKS.map((task) => [task, join(values.out!, task)]) : [[values.task as LabTask, values.out]];
  for (const [, dir] of jobs) await checkOutputFolder(dir);
  const writers: Record<LabTask, (dir: string, options: DatasetOptions) => Promise<void>> = { smallprint: writeSmallPrintDataset, scienceqa: writeScienceQaDataset };
  for (const [task, dir] of jobs) {
    const progress = new Progress(task, count);
    await writers[task](dir, { seed, count, onProgress: () => progress.advance() });
    progress.finish();
  }
}

async function tokenizerCommand(args: string[]): Promise<void> {
  const { values } = parseCommandLine(args, LAB_TOKENIZER_HELP) as { values: { out?: string; seed?: string; count?: string; 'vocab-size'?: string } };
  if (values.out === undefined) throw new InputError(`--out is required; ${TOKENIZER_USAGE}`);
  if (existsSync(values.out)) throw new InputError(`${values.out} exists; give a new file (nothing is overwritten)`);
  const model = labTokenizerModel(seedOf(values.seed), integer(values.count, 'count', 1, 1_000_000, 2000), integer(values['vocab-size'], 'vocab-size', 400, 32000, 1024));
  await writeFileAtomically(values.out, model);
}

/** Without a TTY, progress is logged every this many steps (or images). */
const LOG_EVERY = 50;
const RUN_USAGE = 'usage: egret lab [--quick] [--out DIR] [--cache-dir DIR] [--threads N]';

export const LAB_RUN_HELP: CommandHelp = {
  usage: RUN_USAGE,
  summary: "Reproduces MRA's, VTW's and MMA's claims in miniature (docs/LAB.md): trains the lab's models from scratch (or reuses them), scores them on held-out data, writes RESULTS.md, results.json and charts, and exits 1 when a claim's direction does not hold.",
  options: { quick: { type: 'boolean' }, out: { type: 'string' }, 'cache-dir': { type: 'string' }, threads: { type: 'string' } },
  describe: {
    quick: "fewer held-out images; the full run's MRA models when shipped or cached, else small ones of its own; MMA's quick settings (minutes on 2 cores)",
    out: 'the results folder (default lab-results)',
    'cache-dir': 'where trained models are kept between runs, and where a stopped training goes on from its last save (every 100 steps; default: the user cache folder\'s lab/)',
    threads: 'compute threads (default: all cores)',
  },
};

async function runCommand(args: string[]): Promise<number> {
  const { values } = parseCommandLine(args, LAB_RUN_HELP) as { values: { quick?: boolean; out?: string; 'cache-dir'?: string; threads?: string } };
  const quick = values.quick === true;
  const threads = values.threads === undefined ? undefined : integer(values.threads, 'threads', 1, 1024, 1);
  const cacheDir = values['cache-dir'] ?? join(defaultCacheDir(), 'lab');
  const out = values.out ?? 'lab-results';
  const started = performance.now();
  let bar: Progress | undefined;
  let label = '';
  const ctx = {
    cacheDir,
    threads,
    shippedDir: SHIPPED_MODELS_DIR,
    log: (message: string) => {
      bar?.finish();
      bar = undefined;
      process.stderr.write(`${message}\n`);
    },
    progress: (what: string, done: number, total: number) => {
      // One bar per kind of work; what follows ' (' (the loss as training goes) changes within it.
      const kind = what.split(' (')[0]!;
      if (kind !== label || !bar) {
        bar?.finish();
        bar = new Progress(kind, total);
        label = kind;
      }
      bar.set(done, what.slice(kind.length).trim());
      // Without a TTY there is no bar: a line now and then, so that a log of hours of training says how it goes.
      if (!process.stderr.isTTY && (done % LOG_EVERY === 0 || done === total)) process.stderr.write(`${what}: ${done}/${total}\n`);
    },
  };
  // The quick run scores the full run's models when it finds them; it never trains them (hours).
  const full = !quick || (await hasLabModels(ctx, FULL_PLAN));
  const plan: MraLabPlan = quick ? { ...(full ? FULL_PLAN : QUICK_PLAN), evalCount: QUICK_PLAN.evalCount, calibration: QUICK_PLAN.calibration } : FULL_PLAN;
  const mra = await runMraLab(ctx, plan);
  bar?.finish();
  bar = undefined;
  const mma = await runMmaLab({ outDir: out, cacheDir, quick, threads, log: ctx.log });
  const checks = labChecks(mra, full, mma);
  const run = { command: ['egret', 'lab', ...args].join(' '), quick, machine: machineDescription(), seconds: (performance.now() - started) / 1000, date: new Date().toISOString(), fullModels: full };
  await writeLabReport(out, run, mra, checks, mma);
  for (const c of checks) process.stdout.write(`${c.holds === undefined ? '–' : c.holds ? '✓' : '✗'} ${c.claim}: ${c.detail}\n`);
  process.stdout.write(`results in ${join(out, 'RESULTS.md')}\n`);
  return checks.some((c) => c.holds === false) ? 1 : 0;
}

/** A number option that passes `check` (`what` says which), `fallback` when absent. */
function numberOption(value: string | undefined, name: string, fallback: number, check: (x: number) => boolean, what: string): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || !check(x)) throw new InputError(`--${name} must be ${what}, got '${value}'`);
  return x;
}

async function readoutCommand(args: string[]): Promise<void> {
  type Values = {
    steps?: string; lr?: string; layout?: string; attention?: string; 'aid-layer'?: string; 'first-until'?: string; 'vector-std'?: string; noise?: string; blocks?: boolean; previous?: boolean; sink?: boolean;
    position?: string; 'position-layer'?: string; 'give-place'?: boolean; 'give-place-until'?: string; 'place-aid'?: string; 'decoder-layers'?: string; seed?: string; threads?: string; out?: string;
  };
  const { values } = parseCommandLine(args, LAB_READOUT_HELP) as { values: Values };
  const layouts: readonly ReadoutLayout[] = ['code', 'one', 'everywhere', 'whole'];
  const layout = (values.layout ?? 'code') as ReadoutLayout;
  if (!layouts.includes(layout)) throw new InputError(`--layout must be ${layouts.join(', ')}, not '${values.layout}'`);
  if (values.out !== undefined && existsSync(values.out)) throw new InputError(`${values.out} exists; give a new file (nothing is overwritten)`);
  if (values['give-place'] && values['give-place-until'] !== undefined) throw new InputError('--give-place and --give-place-until do not go together: one hands the place throughout, the other until a step');
  if (values.blocks && values.previous) throw new InputError('--blocks and --previous do not go together: blocks are places, and --previous keys by the character before');
  const plan = FULL_PLAN.mra.shape;
  const layers = integer(values['decoder-layers'], 'decoder-layers', 1, 32, plan.llm.layers);
  const shape = { ...plan, llm: { ...plan.llm, layers } };
  const layerOf = (name: 'aid-layer' | 'position-layer', fallback: number) =>
    numberOption(values[name], name, fallback, (x) => Number.isInteger(x) && x >= -layers && x < layers, `an integer from ${-layers} to ${layers - 1}`);
  const attention = numberOption(values.attention, 'attention', READOUT_DEFAULTS.attention, (x) => x >= 0 && x <= 100, 'a number from 0 to 100');
  const opts: ReadoutProbeOptions = {
    shape,
    cells: (shape.vit.imageSize / shape.vit.patch) ** 2,
    vectors: { std: numberOption(values['vector-std'], 'vector-std', VECTOR_STD, (x) => x > 0 && x <= 100, 'a number above 0 and at most 100'), blocks: values.blocks ?? false, previous: values.previous ?? false },
    steps: integer(values.steps, 'steps', 1, 1_000_000, 600),
    lr: numberOption(values.lr, 'lr', READOUT_DEFAULTS.lr, (x) => x > 0 && x <= 1, 'a number above 0 and at most 1'),
    batch: 4,
    layout,
    attention,
    aidLayer: layerOf('aid-layer', READOUT_DEFAULTS.aidLayer),
    sink: values.sink ?? false,
    positionAid: numberOption(values.position, 'position', 0, (x) => x >= 0 && x <= 100, 'a number from 0 to 100'),
    positionLayer: layerOf('position-layer', 0),
    givePlace: values['give-place'] ?? false,
    placeAid: numberOption(values['place-aid'], 'place-aid', 0, (x) => x >= 0 && x <= 10_000, 'a number from 0 to 10000'),
    givePlaceUntil: values['give-place-until'] === undefined ? undefined : integer(values['give-place-until'], 'give-place-until', 2, 1_000_000, 0),
    noise: numberOption(values.noise, 'noise', 0, (x) => x >= 0 && x <= 100, 'a number from 0 to 100'),
    firstUntil: integer(values['first-until'], 'first-until', 0, 1_000_000, READOUT_DEFAULTS.firstUntil),
    seed: seedOf(values.seed),
    threads: values.threads === undefined ? undefined : integer(values.threads, 'threads', 1, 1024, 1),
  };
  const reports = await runReadoutProbe(opts, (r) => {
    const aid = r.attention === undefined ? '' : ` attention ${r.attention.toFixed(3)}`;
    const position = r.position === undefined ? '' : ` position ${r.position.toFixed(3)}`;
    const place = r.place === undefined ? '' : ` place ${r.place.toExponential(2)}`;
    process.stderr.write(`step ${r.step}/${opts.steps}: answer ${r.answer.toFixed(3)}${aid}${position}${place} (${r.seconds.toFixed(0)} s)\n`);
  });
  if (values.out !== undefined) await writeFileAtomically(values.out, `${JSON.stringify({ command: ['egret', 'lab', 'readout', ...args].join(' '), settings: { ...opts, shape: undefined, decoderLayers: layers }, reports }, null, 2)}\n`);
}

const SUBCOMMANDS: Record<string, (args: string[]) => Promise<void>> = { generate: generateCommand, tokenizer: tokenizerCommand, readout: readoutCommand };

/** `egret lab [--quick] ...`, `egret lab generate|tokenizer ...`; returns the exit status. */
export async function labCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || (sub.startsWith('-') && sub !== '--help' && sub !== '-h')) return runCommand(args);
  if (sub === '--help' || sub === '-h') {
    throw new HelpRequested(formatHelp({
      ...LAB_RUN_HELP,
      usage: `${RUN_USAGE}\n       egret lab generate|tokenizer|readout ...`,
      summary: `${LAB_RUN_HELP.summary} \`lab generate\` writes the generated tasks, \`lab tokenizer\` the tiny models' tokenizer, \`lab readout\` probes the MRA decoder's read-out alone (egret lab SUBCOMMAND --help).`,
    }));
  }
  const handler = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!handler) throw new InputError(`egret lab ${sub}: unknown subcommand; available: egret lab [--quick], egret lab generate|tokenizer|readout (egret lab --help)`);
  await handler(rest);
  return 0;
}
