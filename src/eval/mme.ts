/**
 * MME: LLaVA's playground/data/eval/MME/convert_answer_to_mme.py writes each answer beside its ground truth,
 * then MME's eval_tool/calculation.py (tools/eval_tool.zip, Evaluation branch of
 * BradyFU/Awesome-Multimodal-Large-Language-Models) scores accuracy and accuracy+ per subtask.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { Answer } from './answers.js';
import { isDirectory, listDir, readText } from './files.js';
import { pyLines, pyPrefix, pyStrip } from '../text/pytext.js';

/** calculation.py eval_type_dict, in its order (the totals are summed in this order). */
export const MME_PERCEPTION = ['existence', 'count', 'position', 'color', 'posters', 'celebrity', 'scene', 'landmark', 'artwork', 'OCR'];
export const MME_COGNITION = ['commonsense_reasoning', 'numerical_calculation', 'text_translation', 'code_reasoning'];

export interface MmeSubtaskScores {
  accuracy: number;
  /** The fraction of images whose two questions are both answered right. */
  accuracy_plus: number;
  /** 100 * (accuracy + accuracy_plus): MME's points. */
  score: number;
}

export interface MmeResult {
  task: 'mme';
  perception: number;
  cognition: number;
  subtasks: Record<string, MmeSubtaskScores>;
}

export type MmeLabel = 'yes' | 'no' | 'other';

/**
 * calculation.py parse_pred_ans on the answer as it reads it back: the converter's line keeps its '\n', so the
 * exact 'yes'/'no' test never fires and the label comes from the first four characters: 'yes' inside them
 * wins, else 'no' inside them ("know" -> no), else other ("  yes" -> other).
 */
export function mmeLabel(answer: string): MmeLabel {
  const prefix = pyPrefix((answer + '\n').toLowerCase(), 4);
  if (prefix.includes('yes')) return 'yes';
  if (prefix.includes('no')) return 'no';
  return 'other';
}

/** convert_answer_to_mme.py get_gt: (subtask, file, question) -> answer from the benchmark's .txt files. */
function loadGroundTruth(dataDir: string): Map<string, string> {
  const truth = new Map<string, string>();
  for (const subtask of listDir(dataDir)) {
    const subtaskDir = join(dataDir, subtask);
    if (!isDirectory(subtaskDir)) continue;
    // Subtasks with an images/ folder keep their questions in questions_answers_YN/; the others beside the images.
    const qaDir = isDirectory(join(subtaskDir, 'images')) ? join(subtaskDir, 'questions_answers_YN') : subtaskDir;
    for (const file of listDir(qaDir)) {
      if (!file.endsWith('.txt')) continue;
      const path = join(qaDir, file);
      pyLines(readText(path)).forEach((line, index) => {
        const fields = pyStrip(line).split('\t');
        if (fields.length !== 2) throw new InputError(`${path}:${index + 1}: expected 'question<TAB>answer'`);
        truth.set(key(subtask, file, fields[0]!), fields[1]!);
      });
    }
  }
  if (truth.size === 0) throw new InputError(`${dataDir}: no MME questions (<subtask>/[questions_answers_YN/]*.txt)`);
  return truth;
}

function key(subtask: string, file: string, question: string): string {
  return JSON.stringify([subtask, file, question]);
}

const LLAVA_SUFFIX = 'Answer the question using a single word or phrase.';
const MME_SUFFIX = 'Please answer yes or no.';

/** convert_answer_to_mme.py: the benchmark's question for a LLaVA prompt, and its ground truth. */
function groundTruthOf(truth: Map<string, string>, subtask: string, file: string, answer: Answer): string {
  let prompt = answer.prompt;
  if (prompt.includes(LLAVA_SUFFIX)) prompt = pyStrip(prompt.replaceAll(LLAVA_SUFFIX, ''));
  if (!prompt.includes(MME_SUFFIX)) {
    prompt = `${prompt} ${MME_SUFFIX}`;
    // Some benchmark questions have two spaces before the suffix.
    if (!truth.has(key(subtask, file, prompt))) prompt = prompt.replaceAll(` ${MME_SUFFIX}`, `  ${MME_SUFFIX}`);
  }
  const gt = truth.get(key(subtask, file, prompt));
  if (gt === undefined) throw new InputError(`${answer.where}: question not in the MME benchmark: ${subtask}/${file}: ${prompt}`);
  return gt;
}

function scoreSubtask(name: string, rows: { gt: string; label: MmeLabel }[]): MmeSubtaskScores {
  // calculation.py reads the subtask's lines two by two: one image, two questions, in answer-file order.
  if (rows.length % 2 !== 0) throw new InputError(`MME subtask '${name}' has an odd number of answers (${rows.length}); each image has two`);
  let right = 0, bothRight = 0;
  for (let i = 0; i < rows.length; i += 2) {
    const pair = rows.slice(i, i + 2).map((row) => row.gt.toLowerCase() === row.label);
    right += pair.filter(Boolean).length;
    if (pair[0] && pair[1]) bothRight++;
  }
  const accuracy = right / rows.length;
  const accuracyPlus = bothRight / (rows.length / 2);
  return { accuracy, accuracy_plus: accuracyPlus, score: accuracy * 100 + accuracyPlus * 100 };
}

/** Scores LLaVA answers (question_id `<subtask>/.../<image>`) against MME_Benchmark_release_version/. */
export function scoreMme(dataDir: string, answers: Answer[]): MmeResult {
  const truth = loadGroundTruth(dataDir);
  const bySubtask = new Map<string, { gt: string; label: MmeLabel }[]>();
  for (const answer of answers) {
    const parts = answer.questionId.split('/');
    const subtask = parts[0]!;
    const file = parts[parts.length - 1]!.split('.')[0] + '.txt';
    // calculation.py splits each written line on tabs and reads lines back: an answer must stay one field of one line.
    if (/[\t\n\r]/.test(answer.text)) throw new InputError(`${answer.where}: an MME answer cannot contain a tab or a line break`);
    const gt = groundTruthOf(truth, subtask, file, answer);
    if (!['yes', 'no'].includes(gt.toLowerCase())) throw new InputError(`${dataDir}: ground truth '${gt}' for ${answer.where} is not yes/no`);
    const rows = bySubtask.get(subtask) ?? [];
    rows.push({ gt, label: mmeLabel(answer.text) });
    bySubtask.set(subtask, rows);
  }
  const subtasks: Record<string, MmeSubtaskScores> = {};
  const total = (names: string[]): number => {
    let sum = 0;
    for (const name of names) {
      const rows = bySubtask.get(name);
      if (!rows) throw new InputError(`no predictions for MME subtask '${name}'`);
      subtasks[name] = scoreSubtask(name, rows);
      sum += subtasks[name]!.score;
    }
    return sum;
  };
  const perception = total(MME_PERCEPTION);
  const cognition = total(MME_COGNITION);
  return { task: 'mme', perception, cognition, subtasks };
}
