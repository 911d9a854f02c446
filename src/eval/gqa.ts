/**
 * GQA exact-match accuracy: LLaVA-HR's scripts/convert_gqa_for_eval.py turns answers into predictions, then
 * GQA's eval/eval.py (`--tier testdev_balanced`; copied e.g. in SHI-Labs/VCoder) scores the balanced questions.
 */
import { InputError } from '../errors.js';
import type { Answer } from './answers.js';
import { asRecord, readJson, stringField } from './files.js';

export interface GqaResult {
  task: 'gqa';
  count: number;
  accuracy: number;
  /** Questions whose structural type is not "query" (verify, logical, choose, compare). */
  binary: number;
  /** Questions whose structural type is "query". */
  open: number;
}

/** convert_gqa_for_eval.py: `text.rstrip('.').lower()` (trailing periods only; spaces stay). */
export function gqaPrediction(text: string): string {
  return text.replace(/\.+$/, '').toLowerCase();
}

/** eval.py avg(): an empty list averages to 0. */
function mean(scores: number[]): number {
  return scores.length === 0 ? 0 : scores.reduce((sum, score) => sum + score, 0) / scores.length;
}

/** Scores LLaVA answers against testdev_balanced_questions.json (questions keyed by id). */
export function scoreGqa(questionsPath: string, answers: Answer[]): GqaResult {
  const questions = asRecord(readJson(questionsPath), questionsPath);
  // The later of two answers to a question wins (eval.py builds a dict).
  const predictions = new Map(answers.map((answer) => [answer.questionId, gqaPrediction(answer.text)]));
  const all: number[] = [], binary: number[] = [], open: number[] = [];
  for (const [id, value] of Object.entries(questions)) {
    const where = `${questionsPath}: question ${id}`;
    const question = asRecord(value, where);
    if (question['isBalanced'] !== true) continue; // eval.py scores the balanced questions only
    const predicted = predictions.get(id);
    if (predicted === undefined) throw new InputError(`no prediction for GQA question ${id} (eval.py requires all)`);
    const score = predicted === stringField(question, 'answer', where) ? 1 : 0;
    const structural = stringField(asRecord(question['types'], `${where}: types`), 'structural', `${where}: types`);
    all.push(score);
    (structural === 'query' ? open : binary).push(score);
  }
  return { task: 'gqa', count: all.length, accuracy: mean(all), binary: mean(binary), open: mean(open) };
}
