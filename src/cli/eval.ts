import { InputError } from '../errors.js';
import { readAnswers, type Answer } from '../eval/answers.js';
import { writeAtomically } from '../eval/files.js';
import { scoreGqa } from '../eval/gqa.js';
import { MME_COGNITION, MME_PERCEPTION, scoreMme } from '../eval/mme.js';
import { scorePope } from '../eval/pope.js';
import { SQA_CATEGORIES, SQA_EXTRACTS, scoreScienceQa, type SqaExtract } from '../eval/scienceqa.js';
import { scoreTextVqa } from '../eval/textvqa.js';
import { formatHelp, HelpRequested, parseCommandLine, type CommandHelp } from './args.js';

const USAGE =
  'usage: egret eval score TASK --data PATH --predictions FILE [--questions FILE] [--split S] [--extract llava|lavin] [--json] [--out FILE]';

const OPTIONS = {
  data: { type: 'string' },
  predictions: { type: 'string' },
  questions: { type: 'string' },
  split: { type: 'string' },
  extract: { type: 'string' },
  json: { type: 'boolean', default: false },
  out: { type: 'string' },
} as const;

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** What a task's scorer gives back: the JSON document and the rows of its readable table. */
interface Scored {
  json: object;
  table: [string, string][];
}

interface Task {
  /** Task-specific options besides --data, --predictions, --json and --out. */
  options: (keyof typeof OPTIONS)[];
  score(data: string, answers: Answer[], values: Values): Scored;
}

const percent = (rate: number | null): string => (rate === null ? '-' : `${(rate * 100).toFixed(2)}%`);
const points = (score: number): string => score.toFixed(2);

const TASKS: Record<string, Task> = {
  textvqa: {
    options: [],
    score(data, answers) {
      const r = scoreTextVqa(data, answers);
      return { json: r, table: [['samples', String(r.count)], ['accuracy', percent(r.accuracy)]] };
    },
  },
  pope: {
    options: ['questions'],
    score(data, answers, values) {
      if (values.questions === undefined) throw new InputError(`pope needs --questions llava_pope_test.jsonl; ${USAGE}`);
      const r = scorePope(data, values.questions, answers);
      const header = ['samples', 'TP', 'FP', 'TN', 'FN', 'accuracy', 'precision', 'recall', 'F1', 'yes-ratio'];
      const width = (i: number) => Math.max(header[i]!.length, 7);
      const row = (cells: string[]) => cells.map((cell, i) => cell.padStart(width(i))).join('  ');
      const table: [string, string][] = [['category', row(header)]];
      for (const [name, c] of Object.entries(r.categories)) {
        const cells = [c.count, c.tp, c.fp, c.tn, c.fn].map(String).concat([c.accuracy, c.precision, c.recall, c.f1, c.yes_ratio].map(percent));
        table.push([name, row(cells)]);
      }
      return { json: r, table };
    },
  },
  scienceqa: {
    options: ['split', 'extract'],
    score(data, answers, values) {
      const extract = values.extract ?? 'llava';
      if (!(SQA_EXTRACTS as readonly string[]).includes(extract)) throw new InputError(`--extract must be llava or lavin, not '${extract}'`);
      const r = scoreScienceQa(data, answers, { split: values.split ?? 'test', extract: extract as SqaExtract });
      const table: [string, string][] = [
        ['samples', String(r.count)],
        ['correct', String(r.correct)],
        ['failed', String(r.failed)],
        ...SQA_CATEGORIES.map((name): [string, string] => [name, percent(r.categories[name])]),
        ['average', percent(r.accuracy)],
        ['IMG-accuracy', percent(r.img_accuracy)],
      ];
      return { json: r, table };
    },
  },
  gqa: {
    options: [],
    score(data, answers) {
      const r = scoreGqa(data, answers);
      const table: [string, string][] = [['samples', String(r.count)], ['accuracy', percent(r.accuracy)], ['binary', percent(r.binary)], ['open', percent(r.open)]];
      return { json: r, table };
    },
  },
  mme: {
    options: [],
    score(data, answers) {
      const r = scoreMme(data, answers);
      const rows = (names: string[]): [string, string][] =>
        names.map((name) => {
          const s = r.subtasks[name]!;
          return [`  ${name}`, `${points(s.score)}  (acc ${percent(s.accuracy)}, acc+ ${percent(s.accuracy_plus)})`];
        });
      const table: [string, string][] = [['perception', points(r.perception)], ...rows(MME_PERCEPTION), ['cognition', points(r.cognition)], ...rows(MME_COGNITION)];
      return { json: r, table };
    },
  },
};

/** `egret eval score TASK ...`: scores an answer file the way the benchmark's official scripts do. */
export const SCORE_HELP: CommandHelp = {
  usage: USAGE,
  summary: `Scores an answer file the way the benchmark's official script does. TASK: ${Object.keys(TASKS).join(', ')}.`,
  options: OPTIONS,
  positionals: true,
  describe: { data: "the benchmark's annotations (file or folder, as the official scorer reads them)", out: 'also write the JSON document to FILE' },
};

async function scoreCommand(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, SCORE_HELP);
  const values = parsed.values as Values;
  const [name, ...extra] = parsed.positionals;
  if (name === undefined || extra.length > 0) throw new InputError(`expected one TASK (${Object.keys(TASKS).join(', ')}); ${USAGE}`);
  const task = Object.hasOwn(TASKS, name) ? TASKS[name] : undefined;
  if (!task) throw new InputError(`unknown task '${name}' (${Object.keys(TASKS).join(', ')})`);
  for (const option of ['questions', 'split', 'extract'] as const) {
    if (values[option] !== undefined && !task.options.includes(option)) throw new InputError(`--${option} does not apply to ${name}`);
  }
  if (values.data === undefined || values.predictions === undefined) throw new InputError(`--data and --predictions are required; ${USAGE}`);
  const { json, table } = task.score(values.data, readAnswers(values.predictions), values);
  if (values.out !== undefined) writeAtomically(values.out, `${JSON.stringify(json, null, 1)}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } else {
    const width = Math.max(...table.map(([label]) => label.length));
    process.stdout.write(`${name}\n${table.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join('\n')}\n`);
  }
}

const SUBCOMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  score: scoreCommand,
  // Imported when used: scoring does not load ONNX Runtime.
  run: async (args) => (await import('./eval-run.js')).runCommand(args),
  merge: async (args) => (await import('./eval-run.js')).mergeCommand(args),
};

/** `egret eval score|run|merge ...`. */
export async function evalCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    throw new HelpRequested(formatHelp({ usage: 'usage: egret eval score|run|merge ...', summary: 'Benchmarks: `eval run` answers the questions with a model, `eval merge` joins the shards of a run, `eval score` scores an answer file (egret eval SUBCOMMAND --help).', options: {} }));
  }
  const handler = sub !== undefined && Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!handler) throw new InputError(`expected 'eval ${Object.keys(SUBCOMMANDS).join('|')}'; ${USAGE}`);
  await handler(rest);
}
