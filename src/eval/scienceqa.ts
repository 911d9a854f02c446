/**
 * ScienceQA accuracy: answer extraction as LLaVA-HR's llava_hr/eval/eval_science_qa.py (`llava`) or LaVIN's
 * eval.py (`lavin`) does it, and the per-category table of ScienceQA's tools/evaluate_acc.py.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { Answer } from './answers.js';
import { arrayField, asRecord, readJson } from './files.js';

export type SqaExtract = 'llava' | 'lavin';
export const SQA_EXTRACTS: readonly SqaExtract[] = ['llava', 'lavin'];

/** The option letters of both official scripts (`--options` default in eval_science_qa.py, PromptArgs in eval.py). */
const OPTIONS = ['A', 'B', 'C', 'D', 'E'];

export const SQA_CATEGORIES = ['NAT', 'SOC', 'LAN', 'TXT', 'IMG', 'NO', 'G1-6', 'G7-12'] as const;
export type SqaCategory = (typeof SQA_CATEGORIES)[number];

export interface SqaResult {
  task: 'scienceqa';
  count: number;
  correct: number;
  /** Problems whose prediction gives no option letter within the problem's choices (missing ones included). */
  failed: number;
  accuracy: number;
  /** LLaVA's IMG-Accuracy: over predictions whose prompt contains `<image>`; null when there are none. */
  img_accuracy: number | null;
  /** Accuracy per evaluate_acc.py category; null for an empty category (evaluate_acc.py prints -1). */
  categories: Record<SqaCategory, number | null>;
}

/**
 * `re.compile(r'The answer is ([A-Z]).')` of both scripts: the unescaped `.` is any character but '\n'
 * (Python's `.`; JavaScript's would also refuse '\r', '\u2028' and '\u2029').
 */
const ANSWER_IS = /The answer is ([A-Z])[^\n]/gu;

/** The option letter a prediction names, or undefined where the official script says "FAILED". */
export function extractSqaLetter(text: string, extract: SqaExtract): string | undefined {
  const found = [...text.matchAll(ANSWER_IS)].map((match) => match[1]!);
  if (extract === 'lavin') return found[0]; // eval.py: the first match, if any
  if (OPTIONS.includes(text)) return text;
  // LLaVA-HR's rule takes the first character of any answer of three or more characters ("Banana" -> B);
  // haotian-liu/LLaVA's eval_science_qa.py also requires ". " after it.
  const chars = Array.from(text); // Python's len() and [0] count code points
  if (chars.length >= 3 && OPTIONS.includes(chars[0]!)) return chars[0];
  return found.length === 1 ? found[0] : undefined;
}

/**
 * The chosen option's index: the letter's among the problem's first `choices` letters, or undefined where the
 * official scripts have none (LLaVA scores -1; LaVIN's get_pred_idx draws a random choice, which egret scores wrong).
 */
export function sqaPredictionIndex(letter: string | undefined, choices: number): number | undefined {
  const index = letter === undefined ? -1 : OPTIONS.slice(0, choices).indexOf(letter);
  return index === -1 ? undefined : index;
}

interface Problem {
  choices: number;
  answer: number;
  hint: boolean;
  image: boolean;
  subject: unknown;
  grade: unknown;
}

function loadProblem(value: unknown, where: string): Problem {
  const record = asRecord(value, where);
  const answer = record['answer'];
  if (typeof answer !== 'number') throw new InputError(`${where}: 'answer' must be a number`);
  return {
    choices: arrayField(record, 'choices', where).length,
    answer,
    // evaluate_acc.py tests the fields' truthiness: an empty hint or a null image is absent.
    hint: Boolean(record['hint']),
    image: Boolean(record['image']),
    subject: record['subject'],
    grade: record['grade'],
  };
}

const GRADES_1_6 = ['grade1', 'grade2', 'grade3', 'grade4', 'grade5', 'grade6'];
const GRADES_7_12 = ['grade7', 'grade8', 'grade9', 'grade10', 'grade11', 'grade12'];

/** evaluate_acc.py get_scores: which categories a problem counts in. */
const CATEGORY_TESTS: Record<SqaCategory, (p: Problem) => boolean> = {
  NAT: (p) => p.subject === 'natural science',
  SOC: (p) => p.subject === 'social science',
  LAN: (p) => p.subject === 'language science',
  TXT: (p) => p.hint,
  IMG: (p) => p.image,
  NO: (p) => !p.hint && !p.image,
  'G1-6': (p) => GRADES_1_6.includes(p.grade as string),
  'G7-12': (p) => GRADES_7_12.includes(p.grade as string),
};

export interface SqaOptions {
  split: string;
  extract: SqaExtract;
}

/** Scores LLaVA answers against problems.json and pid_splits.json in `dataDir`. */
export function scoreScienceQa(dataDir: string, answers: Answer[], options: SqaOptions): SqaResult {
  const splitsPath = join(dataDir, 'pid_splits.json');
  const problemsPath = join(dataDir, 'problems.json');
  const splits = asRecord(readJson(splitsPath), splitsPath);
  const ids = splits[options.split];
  if (!Array.isArray(ids)) {
    throw new InputError(`${splitsPath}: no split '${options.split}' (${Object.keys(splits).join(', ')})`);
  }
  const problems = asRecord(readJson(problemsPath), problemsPath);
  // Later answers to the same question replace earlier ones (the official scripts build a dict).
  const byId = new Map(answers.map((answer) => [answer.questionId, answer]));

  let correct = 0, failed = 0, imageCount = 0, imageCorrect = 0;
  const tally = new Map<SqaCategory, { total: number; correct: number }>(
    SQA_CATEGORIES.map((category) => [category, { total: 0, correct: 0 }]),
  );
  const split = new Set(ids.map(String)); // repeated ids count once, as in the official dict
  for (const id of split) {
    if (!Object.hasOwn(problems, id)) throw new InputError(`${splitsPath}: problem ${id} is not in ${problemsPath}`);
    const problem = loadProblem(problems[id], `${problemsPath}: problem ${id}`);
    const answer = byId.get(id);
    // A missing prediction scores as the text 'FAILED' with the prompt 'Unknown' (eval_science_qa.py).
    const letter = extractSqaLetter(answer?.text ?? 'FAILED', options.extract);
    const index = sqaPredictionIndex(letter, problem.choices);
    if (index === undefined) failed++;
    const right = index === problem.answer;
    if (right) correct++;
    if (answer?.prompt.includes('<image>')) {
      imageCount++;
      if (right) imageCorrect++;
    }
    for (const category of SQA_CATEGORIES) {
      if (!CATEGORY_TESTS[category](problem)) continue;
      const entry = tally.get(category)!;
      entry.total++;
      if (right) entry.correct++;
    }
  }
  if (split.size === 0) throw new InputError(`${splitsPath}: split '${options.split}' is empty`);
  const categories = {} as Record<SqaCategory, number | null>;
  for (const [category, { total, correct: right }] of tally) categories[category] = total === 0 ? null : right / total;
  return {
    task: 'scienceqa',
    count: split.size,
    correct,
    failed,
    accuracy: correct / split.size,
    img_accuracy: imageCount === 0 ? null : imageCorrect / imageCount,
    categories,
  };
}
