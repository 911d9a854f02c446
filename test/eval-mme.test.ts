import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readAnswers } from '../src/eval/answers.js';
import { MME_COGNITION, MME_PERCEPTION, mmeLabel, scoreMme } from '../src/eval/mme.js';
import { expected, fixture } from './helpers/eval.js';

const official = expected<{
  perception: number;
  cognition: number;
  subtasks: Record<string, { acc: number; acc_plus: number; score: number }>;
}>('mme');
const functions = expected<{ mme_label: Record<string, string> }>('functions');
const data = fixture('mme', 'MME_Benchmark_release_version');

test("answers are labelled as calculation.py's parse_pred_ans reads them back", () => {
  for (const [text, label] of Object.entries(functions.mme_label)) assert.equal(mmeLabel(text), label, JSON.stringify(text));
});

test('accuracy, accuracy+, subtask scores and totals equal convert_answer_to_mme.py + calculation.py', () => {
  const result = scoreMme(data, readAnswers(fixture('mme', 'answers.jsonl')));
  assert.deepEqual(Object.keys(result.subtasks), [...MME_PERCEPTION, ...MME_COGNITION]);
  for (const [name, scores] of Object.entries(official.subtasks)) {
    assert.deepEqual(result.subtasks[name], { accuracy: scores.acc, accuracy_plus: scores.acc_plus, score: scores.score }, name);
  }
  assert.equal(result.perception, official.perception);
  assert.equal(result.cognition, official.cognition);
});

test('a missing subtask or an unpaired answer is an InputError', () => {
  const answers = readAnswers(fixture('mme', 'answers.jsonl'));
  assert.throws(() => scoreMme(data, answers.filter((a) => !a.questionId.startsWith('OCR/'))), { name: 'InputError', message: /'OCR'/ });
  const unpaired = answers.filter((a, i) => !(a.questionId.startsWith('count/') && i === answers.findIndex((b) => b.questionId.startsWith('count/'))));
  assert.throws(() => scoreMme(data, unpaired), { name: 'InputError', message: /odd number/ });
});
