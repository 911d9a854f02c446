import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readAnswers } from '../src/eval/answers.js';
import { popeSaysNo, scorePope, type PopeScores } from '../src/eval/pope.js';
import { expected, fixture } from './helpers/eval.js';

const official = expected<{ categories: Record<string, PopeScores> }>('pope');
const functions = expected<{ pope_says_no: Record<string, boolean> }>('functions');

test('yes/no extraction matches eval_pope.py', () => {
  for (const [text, no] of Object.entries(functions.pope_says_no)) assert.equal(popeSaysNo(text), no, JSON.stringify(text));
});

test('every POPE number equals eval_pope.py, including position-paired labels and a label list shorter than the answers', () => {
  const result = scorePope(fixture('pope', 'coco'), fixture('pope', 'llava_pope_test.jsonl'), readAnswers(fixture('pope', 'answers.jsonl')));
  assert.equal(result.task, 'pope');
  assert.deepEqual(Object.keys(result.categories), ['adversarial', 'popular', 'random']);
  for (const [category, scores] of Object.entries(official.categories)) assert.deepEqual(result.categories[category], scores, category);
});
