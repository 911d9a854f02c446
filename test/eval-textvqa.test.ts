import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readAnswers } from '../src/eval/answers.js';
import { softVqaScore, scoreTextVqa, textVqaQuestion } from '../src/eval/textvqa.js';
import { normalizeVqaAnswer } from '../src/eval/vqa-normalize.js';
import { expected, fixture } from './helpers/eval.js';

const official = expected<{ accuracy: number; per_question: number[] }>('textvqa');
const functions = expected<{ vqa_normalize: Record<string, string> }>('functions');
const annotations = fixture('textvqa', 'TextVQA_0.5.1_val.json');

test('EvalAI normalisation matches m4c_evaluator.EvalAIAnswerProcessor on every corner case', () => {
  for (const [input, output] of Object.entries(functions.vqa_normalize)) {
    assert.equal(normalizeVqaAnswer(input), output, JSON.stringify(input));
  }
});

test('per-question soft scores match the official leave-one-out averaging', () => {
  const answers = readAnswers(fixture('textvqa', 'answers.jsonl'));
  const { data } = JSON.parse(readFileSync(annotations, 'utf8')) as {
    data: { image_id: string; question: string; answers: string[] }[];
  };
  assert.equal(answers.length, official.per_question.length);
  answers.forEach((answer, i) => {
    const entry = data.find((d) => d.image_id === answer.questionId && d.question.toLowerCase() === textVqaQuestion(answer.prompt))!;
    assert.equal(softVqaScore(answer.text, entry.answers), official.per_question[i], answer.text);
  });
});

test('accuracy equals eval_textvqa.py on the miniature benchmark', () => {
  const result = scoreTextVqa(annotations, readAnswers(fixture('textvqa', 'answers.jsonl')));
  assert.deepEqual(result, { task: 'textvqa', count: official.per_question.length, accuracy: official.accuracy });
});

test('prompt_processor reads the question from each LLaVA / BLIP prompt layout', () => {
  const suffix = '\nAnswer the question using a single word or phrase.';
  assert.equal(textVqaQuestion(`What Is It?\nReference OCR token: a, b${suffix}`), 'what is it?');
  assert.equal(textVqaQuestion(`Reference OCR token: a, b\nWhat Is It?${suffix}`), 'what is it?');
  assert.equal(textVqaQuestion(`What Is It?${suffix}`), 'what is it?');
  assert.equal(textVqaQuestion('OCR tokens: a, b. Question: What\nIs It? Short answer: '), 'what\nis it?');
  assert.equal(textVqaQuestion('What is it?'), undefined);
  assert.equal(textVqaQuestion('OCR tokens: a. no question'), undefined);
});
