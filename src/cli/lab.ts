/**
 * `egret lab generate` and `egret lab tokenizer`: the lab's generated datasets and its tiny models' tokenizer.
 * `egret lab [--quick]` itself (training and evaluating the miniature reproductions) is not built yet.
 */
import { existsSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import {
  checkOutputFolder, LAB_TASKS, labTokenizerModel, writeScienceQaDataset, writeSmallPrintDataset, type DatasetOptions, type LabTask,
} from '../lab/datasets.js';
import { formatHelp, HelpRequested, parseCommandLine, type CommandHelp } from './args.js';
import { Progress } from './progress.js';

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
  const partial = `${values.out}.partial`;
  await writeFile(partial, model);
  await rename(partial, values.out);
}

const SUBCOMMANDS: Record<string, (args: string[]) => Promise<void>> = { generate: generateCommand, tokenizer: tokenizerCommand };

/** `egret lab generate|tokenizer ...`. */
export async function labCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    throw new HelpRequested(formatHelp({
      usage: 'usage: egret lab generate|tokenizer ...',
      summary: "The lab: `lab generate` writes the generated tasks, `lab tokenizer` the tiny models' tokenizer (egret lab SUBCOMMAND --help). Training and evaluating the miniature reproductions (egret lab [--quick]) is not built yet.",
      options: {},
    }));
  }
  const handler = sub !== undefined && Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!handler) {
    throw new InputError(`egret lab${sub === undefined ? '' : ` ${sub}`}: training and evaluating the miniature reproductions is not built yet; available: egret lab generate|tokenizer (egret lab --help)`);
  }
  await handler(rest);
}
