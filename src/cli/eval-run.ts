/**
 * `egret eval run` and `egret eval merge`: a model answers a benchmark's questions as the official generation
 * scripts ask them, into a LLaVA answer file that survives interruption and splits across machines.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { generateAll, type PreparedPrompt } from '../generate/generate.js';
import { AnswerWriter, answerLine, mergeAnswerFiles, modelIdFromPath, type RunSettings } from '../eval/prediction-file.js';
import { pyStrip } from '../text/pytext.js';
import { loadQuestions, officialMaxNewTokens, RUN_TASKS, type EvalQuestion, type PromptStyle, type RunTask } from '../eval/questions.js';
import type { ChatModel } from '../models/index.js';
import { isTemplateName, TEMPLATE_NAMES } from '../text/templates.js';
import { openModel, parseCommandArgs, positiveInt, promptFromArgs, vtwLayerFromArgs, type CommandValues } from './model-args.js';
import { Progress } from './progress.js';
import { EGRET_VERSION } from '../version.js';
import { parseCommandLine, type CommandHelp } from './args.js';

export const RUN_USAGE =
  'usage: egret eval run TASK --model DIR --data QUESTIONS [--images DIR] --out preds.jsonl [--split test] [--shard i/n] [--limit N] ' +
  '[--batch B] [--max-new-tokens N] [--dtype fp32|q8|q4] [--template T] [--vtw-layer K|off | --fastv K:R] [--threads N]';
export const MERGE_USAGE = 'usage: egret eval merge --out preds.jsonl SHARD_FILE...';

const RUN_OPTIONS = {
  data: { type: 'string' },
  images: { type: 'string' },
  out: { type: 'string' },
  split: { type: 'string' },
  shard: { type: 'string' },
  limit: { type: 'string' },
  batch: { type: 'string' },
  'max-new-tokens': { type: 'string' },
} as const;

/** The conversation each official script uses: LLaVA's `--conv-mode vicuna_v1`, LaVIN's own ScienceQA input. */
const OFFICIAL_TEMPLATE = { llava: 'vicuna_v1', lavin: 'lavin_sqa' } as const;

interface Shard {
  index: number;
  count: number;
}

/** `i/n`, 0 ≤ i < n: the i-th of n contiguous parts (LLaVA's --chunk-idx i of --num-chunks n). */
function parseShard(value: string | undefined): Shard {
  if (value === undefined) return { index: 0, count: 1 };
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index >= count) throw new InputError(`--shard must be i/n with 0 ≤ i < n (0-based, as LLaVA's --chunk-idx), got '${value}'`);
  return { index, count };
}

/**
 * The shard's question indices: model_vqa_loader.py's split_list, contiguous chunks of ceil(total / n) questions,
 * so the shards' files one after the other are the whole run in order. A shard past the end is empty.
 */
function shardIndices(total: number, { index, count }: Shard): number[] {
  const size = Math.ceil(total / count);
  const start = Math.min(total, index * size);
  const end = Math.min(total, start + size);
  return Array.from({ length: end - start }, (_, i) => start + i);
}

/** The answer as the official script keeps it: LLaVA strips it and a trailing stop string; LaVIN keeps it whole. */
function officialAnswerText(text: string, style: PromptStyle): string {
  if (style === 'lavin') return text;
  const stripped = pyStrip(text);
  return pyStrip(stripped.endsWith('</s>') ? stripped.slice(0, -'</s>'.length) : stripped);
}

export const RUN_HELP: CommandHelp = {
  usage: RUN_USAGE,
  summary: `A model answers a benchmark's questions as the official generation script asks them, into a LLaVA answer file that resumes after an interruption and splits into shards. TASK: ${RUN_TASKS.join(', ')}.`,
  options: RUN_OPTIONS,
  describe: {
    data: 'the question file (or ScienceQA data folder)',
    out: 'the answer file (JSON lines); an existing one of the same settings is resumed',
    'max-new-tokens': "tokens to generate at most (default: the official script's)",
    template: 'prompt template (default: the official one, vicuna_v1 for LLaVA models)',
  },
};

export const MERGE_HELP: CommandHelp = {
  usage: MERGE_USAGE,
  summary: 'Joins the answer files of the shards of one run, in question order, checking that they belong together.',
  options: { out: { type: 'string' } },
  positionals: true,
  describe: { out: 'the merged answer file' },
};

/** `egret eval run TASK ...`. */
export async function runCommand(args: string[]): Promise<void> {
  const [task, ...rest] = args;
  if (task === '--help' || task === '-h') parseCommandArgs(['--help'], RUN_HELP);
  if (task === undefined || task.startsWith('-')) throw new InputError(`expected a TASK (${RUN_TASKS.join(', ')}); ${RUN_USAGE}`);
  if (!(RUN_TASKS as readonly string[]).includes(task)) throw new InputError(`unknown task '${task}' (${RUN_TASKS.join(', ')})`);
  const values = parseCommandArgs(rest, RUN_HELP);
  for (const option of ['prompt', 'ids', 'image'] as const) {
    if (values[option] !== undefined) throw new InputError(`--${option} does not apply to eval run: the questions come from --data`);
  }
  if (values.split !== undefined && task !== 'scienceqa') throw new InputError(`--split applies to scienceqa only`);
  const data = values.data as string | undefined;
  const out = values.out as string | undefined;
  if (data === undefined || out === undefined || values.model === undefined) throw new InputError(`--model, --data and --out are required; ${RUN_USAGE}`);
  if (!existsSync(data)) throw new InputError(`cannot read ${data}: ENOENT`);
  if (values.images !== undefined && !isDirectory(values.images as string)) throw new InputError(`--images ${String(values.images)}: not a folder`);
  if (values.template !== undefined && !isTemplateName(values.template)) throw new InputError(`--template must be one of ${TEMPLATE_NAMES.join(', ')}, got '${values.template}'`);
  const shard = parseShard(values.shard as string | undefined);
  const limit = positiveInt(values.limit as string | undefined, 'limit');
  const batch = positiveInt(values.batch as string | undefined, 'batch', 1)!;
  const maxNewTokens = positiveInt(values['max-new-tokens'] as string | undefined, 'max-new-tokens', officialMaxNewTokens(task as RunTask))!;
  // Resolved once (an explicit K, off, or the model's calibrated layer), applied to every question and recorded.
  const vtwLayer = await vtwLayerFromArgs(values);
  const methods = { ...values, 'vtw-layer': vtwLayer === undefined ? 'off' : String(vtwLayer) };

  // The prompt style follows the model's family, which the options say (--clip and --adapter make a LaVIN), so the
  // questions and the images they name are known before the model loads: a wrong path costs no load.
  const style: PromptStyle = values.adapter !== undefined ? 'lavin' : 'llava';
  const template = values.template ?? OFFICIAL_TEMPLATE[style];
  const all = loadQuestions(task as RunTask, style, data, (values.split as string | undefined) ?? 'test');
  const questions = limit === undefined ? all : all.slice(0, limit);
  const indices = shardIndices(questions.length, shard);
  const mine = indices.map((i) => questions[i]!);
  const settings: RunSettings = {
    task,
    // A LaVIN model is its adapters (checkpoint-19.pth of a run folder), as LaVIN's eval.py names it.
    model_id: modelIdFromPath(values.adapter ?? values.model),
    dtype: values.dtype ?? 'fp32',
    template,
    max_new_tokens: maxNewTokens,
    questions: questions.length,
    ...(vtwLayer === undefined ? {} : { vtw_layer: vtwLayer }),
    ...(typeof values.fastv === 'string' ? { fastv: values.fastv } : {}),
    ...(style === 'lavin' ? { decode_positions: values['official-positions'] ? 'official' as const : 'corrected' as const } : {}),
  };
  const record = { model: values.model, egret: EGRET_VERSION };
  // An earlier run's answers (resumed) and every image still to be answered, checked before the model loads.
  const writer = AnswerWriter.open(out, mine, indices, settings);
  try {
    for (const question of mine.slice(writer.done)) imagePath(values, question);
    const model = await openModel(values, RUN_USAGE);
    try {
      const progress = new Progress(`${task}${shard.count > 1 ? ` ${shard.index}/${shard.count}` : ''}`, mine.length, writer.done);
      for (let start = writer.done; start < mine.length; start += batch) {
        const end = Math.min(mine.length, start + batch);
        const prompts: PreparedPrompt[] = [];
        for (const question of mine.slice(start, end)) prompts.push(await prepareQuestion(model, methods, question, template));
        const results = await generateAll(model, prompts, { maxNewTokens, temperature: 0 });
        writer.append(results.map((result, i) => answerLine(mine[start + i]!, indices[start + i]!, officialAnswerText(result.text, style), settings, record)));
        progress.advance(end - start);
      }
      progress.finish();
      const resumed = writer.done > 0 ? ` (${writer.done} from an earlier run)` : '';
      process.stdout.write(`${mine.length} answers in ${out}${resumed}\n`);
    } finally {
      await model.dispose();
    }
  } finally {
    writer.close();
  }
}

/** The question as a prompt, through the same path as `egret generate --prompt --image` (template, tokens, image). */
async function prepareQuestion(model: ChatModel, values: CommandValues, question: EvalQuestion, template: string): Promise<PreparedPrompt> {
  const path = imagePath(values, question);
  const image = path === undefined ? [] : [path];
  const { prompt } = await promptFromArgs(model, { ...values, prompt: question.message, image, template }, RUN_USAGE);
  return prompt;
}

/** The question's image file, checked to exist; undefined for a question without one. */
function imagePath(values: CommandValues, question: EvalQuestion): string | undefined {
  if (question.image === undefined) return undefined;
  const folder = values.images as string | undefined;
  if (folder === undefined) throw new InputError(`question ${JSON.stringify(question.id)} has an image (${question.image}); give its folder with --images DIR`);
  const path = join(folder, question.image);
  if (!statSync(path, { throwIfNoEntry: false })?.isFile()) throw new InputError(`question ${JSON.stringify(question.id)}: image ${path} does not exist`);
  return path;
}

const isDirectory = (path: string): boolean => statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;

/** `egret eval merge --out FILE SHARD_FILE...`. */
export async function mergeCommand(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, MERGE_HELP);
  const out = parsed.values['out'] as string | undefined;
  const shards = parsed.positionals;
  if (out === undefined || shards.length === 0) throw new InputError(`--out and at least one shard file are required; ${MERGE_USAGE}`);
  const total = mergeAnswerFiles(out, shards);
  process.stdout.write(`${total} answers from ${shards.length} file${shards.length === 1 ? '' : 's'} in ${out}\n`);
}
