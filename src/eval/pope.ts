/** POPE as LLaVA-HR's llava_hr/eval/eval_pope.py scores it, per annotation file coco_pope_<category>.json. */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { Answer } from './answers.js';
import { asRecord, idField, listDir, readJsonLines, stringField } from './files.js';

export interface PopeScores {
  count: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  yes_ratio: number;
}

export interface PopeResult {
  task: 'pope';
  categories: Record<string, PopeScores>;
}

/**
 * eval_pope.py's yes/no extraction: keep the text before the first period, drop commas, split on single
 * spaces; the answer is "no" when a word is exactly 'No', 'no' or 'not' (so 'NO' and 'Not' count as yes).
 */
export function popeSaysNo(text: string): boolean {
  const words = text.split('.')[0]!.replaceAll(',', '').split(' ');
  return words.includes('No') || words.includes('not') || words.includes('no');
}

/** 0/0 where eval_pope.py raises ZeroDivisionError (e.g. a model that never answers yes): reported as 0. */
function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

function scoreCategory(answers: Answer[], labels: boolean[]): PopeScores {
  const predictions = answers.map((answer) => !popeSaysNo(answer.text));
  let tp = 0, fp = 0, tn = 0, fn = 0;
  // eval_pope.py pairs predictions with labels by position (zip), not by question id, stopping at the shorter list.
  const paired = Math.min(predictions.length, labels.length);
  for (let i = 0; i < paired; i++) {
    if (predictions[i]) labels[i] ? tp++ : fp++;
    else labels[i] ? fn++ : tn++;
  }
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    count: answers.length,
    tp, fp, tn, fn,
    accuracy: ratio(tp + tn, tp + tn + fp + fn),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    // The yes ratio counts every prediction of the category, paired with a label or not.
    yes_ratio: predictions.filter(Boolean).length / predictions.length,
  };
}

/**
 * Scores LLaVA answers given the directory of coco_pope_<category>.json label files and LLaVA's
 * llava_pope_test.jsonl, which gives each question's category.
 */
export function scorePope(annotationDir: string, questionsPath: string, answers: Answer[]): PopeResult {
  const categoryOf = new Map<string, string>();
  for (const { value, where } of readJsonLines(questionsPath)) {
    const record = asRecord(value, where);
    categoryOf.set(idField(record, 'question_id', where), stringField(record, 'category', where));
  }
  for (const answer of answers) {
    if (!categoryOf.has(answer.questionId)) {
      throw new InputError(`${answer.where}: question ${answer.questionId} is not in ${questionsPath}`);
    }
  }
  const files = listDir(annotationDir).filter((name) => name.startsWith('coco_pope_') && name.endsWith('.json'));
  if (files.length === 0) throw new InputError(`${annotationDir}: no coco_pope_<category>.json files`);
  const categories: Record<string, PopeScores> = {};
  for (const file of files) {
    const category = file.slice('coco_pope_'.length, -'.json'.length);
    const labels = readJsonLines(join(annotationDir, file)).map(({ value, where }) => {
      // eval_pope.py: the label 'no' is negative, anything else positive.
      return stringField(asRecord(value, where), 'label', where) !== 'no';
    });
    const categoryAnswers = answers.filter((answer) => categoryOf.get(answer.questionId) === category);
    if (categoryAnswers.length === 0) throw new InputError(`no predictions for POPE category '${category}'`);
    categories[category] = scoreCategory(categoryAnswers, labels);
  }
  return { task: 'pope', categories };
}
