import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readAnswers } from '../src/eval/answers.js';
import { gqaPrediction, scoreGqa } from '../src/eval/gqa.js';
import { expected, fixture } from './helpers/eval.js';

const official = expected<{ count: number; accuracy: number; binary: number; open: number }>('gqa');
const functions = expected<{ gqa_prediction: Record<string, string> }>('functions');

test('predictions are converted as convert_gqa_for_eval.py does', () => {
  for (const [text, prediction] of Object.entries(functions.gqa_prediction)) assert.equal(gqaPrediction(text), prediction, JSON.stringify(text));
});

test('accuracy, binary and open equal GQA eval.py (testdev_balanced) in percent', () => {
  const result = scoreGqa(fixture('gqa', 'testdev_balanced_questions.json'), readAnswers(fixture('gqa', 'answers.jsonl')));
  assert.equal(result.count, official.count);
  assert.equal(result.accuracy * 100, official.accuracy);
  assert.equal(result.binary * 100, official.binary);
  assert.equal(result.open * 100, official.open);
});

test('a balanced question without a prediction is an InputError, as eval.py refuses it', () => {
  const answers = readAnswers(fixture('gqa', 'answers.jsonl')).filter((a) => a.questionId !== '2124810');
  assert.throws(() => scoreGqa(fixture('gqa', 'testdev_balanced_questions.json'), answers), { name: 'InputError', message: /2124810/ });
});
