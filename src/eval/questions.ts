/**
 * Benchmark questions as the official generation scripts read them, and the messages they build from them:
 * LLaVA's llava/eval/model_vqa_loader.py (TextVQA, POPE, GQA, MME question files), model_vqa_science.py (ScienceQA
 * with `--single-pred-prompt`, as scripts/v1_5/eval/sqa.sh runs it) and LaVIN's eval.py (ScienceQA, QCM-ALE).
 */
import { InputError } from '../errors.js';
import { scienceQaPrompt } from '../text/templates.js';
import { readScienceQa, type SqaProblem } from '../train/scienceqa.js';
import { arrayField, asRecord, isDirectory, readJson, readJsonLines, stringField } from './files.js';
import { pyStrip } from '../text/pytext.js';

/** Whose official script builds the prompts: LLaVA's (vicuna_v1 conversations) or LaVIN's (lavin_sqa). */
export type PromptStyle = 'llava' | 'lavin';

export const RUN_TASKS = ['textvqa', 'pope', 'gqa', 'mme', 'scienceqa'] as const;
export type RunTask = (typeof RUN_TASKS)[number];

export interface EvalQuestion {
  /** `question_id` as the benchmark writes it (a string or an integer), copied into the answer file as it is. */
  id: string | number;
  /** The user's message without its image placeholder (the template puts `<image>` where the model wants it). */
  message: string;
  /** The image's path relative to the image folder, when the question has one. */
  image?: string;
  /** The answer file's `prompt`, as the official script records it. */
  prompt: string;
}

/** model_vqa_science.py `--single-pred-prompt`. */
const SINGLE_PRED_PROMPT = "Answer with the option's letter from the given choices directly.";
const OPTION_LETTERS = ['A', 'B', 'C', 'D', 'E'];

/** The new-token limit each official script sets: model_vqa_loader.py 128, model_vqa_science.py and LaVIN 64. */
export function officialMaxNewTokens(task: RunTask): number {
  return task === 'scienceqa' ? 64 : 128;
}

/**
 * The questions of `task` in benchmark order. `data` is LLaVA's question file (JSON lines with `question_id`,
 * `image`, `text`) for the VQA tasks; for ScienceQA either the folder with problems.json and pid_splits.json
 * (questions of `split`) or, for the llava style, LLaVA's converted file (llava_test_CQM-A.json).
 */
export function loadQuestions(task: RunTask, style: PromptStyle, data: string, split: string): EvalQuestion[] {
  if (task !== 'scienceqa') {
    if (style === 'lavin') throw new InputError(`LaVIN's official evaluation covers ScienceQA only; there is no LaVIN prompt format for ${task}`);
    return loadVqaQuestions(data);
  }
  if (isDirectory(data)) return loadScienceQaProblems(data, split, style);
  if (style === 'lavin') throw new InputError(`${data}: LaVIN builds its ScienceQA prompts from problems.json; give the folder that holds problems.json and pid_splits.json`);
  return loadLlavaScienceQa(data);
}

/** model_vqa_loader.py: `<image>\n` + text in a vicuna_v1 conversation; the answer records `text` as its prompt. */
function loadVqaQuestions(path: string): EvalQuestion[] {
  return readJsonLines(path).map(({ value, where }) => {
    const record = asRecord(value, where);
    const text = stringField(record, 'text', where);
    return { id: questionId(record, 'question_id', where), message: text, image: stringField(record, 'image', where), prompt: text };
  });
}

/** model_vqa_science.py over a converted file: a JSON array of `{id, image?, conversations: [{value}, ...]}`. */
function loadLlavaScienceQa(path: string): EvalQuestion[] {
  const rows = readJson(path);
  if (!Array.isArray(rows)) throw new InputError(`${path}: expected a JSON array of questions (LLaVA's llava_test_CQM-A.json)`);
  return rows.map((row, index) => {
    const where = `${path}: question ${index}`;
    const record = asRecord(row, where);
    const first = asRecord(arrayField(record, 'conversations', where)[0], `${where}, conversations[0]`);
    const image = record['image'] === undefined ? undefined : stringField(record, 'image', where);
    return llavaScienceQuestion(questionId(record, 'id', where), stringField(first, 'value', `${where}, conversations[0]`), image);
  });
}

/** The question model_vqa_science.py asks for one converted entry (`value` is the human turn). */
function llavaScienceQuestion(id: string | number, value: string, image: string | undefined): EvalQuestion {
  const message = `${pyStrip(value.replaceAll('<image>', ''))}\n${SINGLE_PRED_PROMPT}`;
  return { id, message, image, prompt: image === undefined ? message : `<image>\n${message}` };
}

/**
 * ScienceQA problems of one split. llava: the human turn scripts/convert_sqa_to_llava.py writes (format CQM-A,
 * no captions), asked as model_vqa_science.py asks it; lavin: LaVIN's QCM-ALE prompt (scienceQaPrompt). Images are
 * `<pid>/<image>` under the split's image folder, as in both repositories.
 */
function loadScienceQaProblems(dir: string, split: string, style: PromptStyle): EvalQuestion[] {
  return readScienceQa(dir, split).map((problem) => {
    const { id } = problem;
    const image = problem.image === undefined ? undefined : `${id}/${problem.image}`;
    if (style === 'llava') {
      const human = convertSqaToLlava(problem);
      return llavaScienceQuestion(id, image === undefined ? human : `${human}\n<image>`, image);
    }
    const message = scienceQaPrompt(problem);
    // LaVIN keeps no answer file; egret writes LLaVA's, marking image questions as LLaVA does (for IMG-Accuracy).
    return { id, message, image, prompt: image === undefined ? message : `<image>\n${message}` };
  });
}

/** convert_sqa_to_llava_base_prompt.py create_one_example_chatbot, input format CQM, use_caption=False. */
function convertSqaToLlava(problem: SqaProblem): string {
  const context = pyStrip(`${problem.hint} `) || 'N/A';
  const choices = problem.choices.map((choice, i) => `(${OPTION_LETTERS[i]}) ${choice}`).join(' ');
  const input = pyStrip(`Context: ${context}\nQuestion: ${problem.question}\nOptions: ${choices}\n`.replaceAll('  ', ' '));
  return input.endsWith('BECAUSE:') ? pyStrip(input.replaceAll('BECAUSE:', '')) : input;
}

/** A question id kept as its JSON type, so the answer file writes it as the benchmark did. */
function questionId(record: Record<string, unknown>, key: string, where: string): string | number {
  const value = record[key];
  if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
  throw new InputError(`${where}: '${key}' must be a string or a number`);
}
