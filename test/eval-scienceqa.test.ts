import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readAnswers } from '../src/eval/answers.js';
import { extractSqaLetter, scoreScienceQa, SQA_CATEGORIES, type SqaCategory, type SqaExtract } from '../src/eval/scienceqa.js';
import { expected, fixture } from './helpers/eval.js';

interface Official {
  count: number;
  correct: number;
  acc: number;
  img_accuracy?: number;
  results: Record<string, number>;
  /** evaluate_acc.py get_scores, in percent (unrounded). */
  scores: Record<string, number>;
}

const functions = expected<{ sqa_llava: Record<string, string>; sqa_lavin: Record<string, string> }>('functions');

/** evaluate_acc.py's key for each of egret's categories. */
const OFFICIAL_KEY: Record<SqaCategory, string> = {
  NAT: 'acc_natural', SOC: 'acc_social', LAN: 'acc_language', TXT: 'acc_has_text', IMG: 'acc_has_image',
  NO: 'acc_no_context', 'G1-6': 'acc_grade_1_6', 'G7-12': 'acc_grade_7_12',
};

for (const extract of ['llava', 'lavin'] as SqaExtract[]) {
  test(`answer extraction '${extract}' matches the official script`, () => {
    for (const [text, letter] of Object.entries(extract === 'llava' ? functions.sqa_llava : functions.sqa_lavin)) {
      assert.equal(extractSqaLetter(text, extract) ?? 'FAILED', letter, JSON.stringify(text));
    }
  });

  test(`scienceqa --extract ${extract} reproduces the official accuracy and evaluate_acc.py categories`, () => {
    const official = expected<Official>(`scienceqa_${extract}`);
    const result = scoreScienceQa(fixture('scienceqa'), readAnswers(fixture('scienceqa', `answers_${extract}.jsonl`)), { split: 'test', extract });
    assert.equal(result.count, official.count);
    assert.equal(result.correct, official.correct);
    assert.equal(result.accuracy * 100, official.acc);
    assert.equal(result.accuracy * 100, official.scores['acc_average']);
    // failed: the problems the official result file scores -1 (no letter within the problem's choices)
    assert.equal(result.failed, Object.values(official.results).filter((index) => index === -1).length);
    for (const category of SQA_CATEGORIES) {
      assert.equal(result.categories[category]! * 100, official.scores[OFFICIAL_KEY[category]], category);
    }
    if (official.img_accuracy !== undefined) assert.equal(result.img_accuracy, official.img_accuracy);
  });
}

test('other splits score their own problems; an unknown split is an InputError', () => {
  const answers = readAnswers(fixture('scienceqa', 'answers_llava.jsonl'));
  const val = scoreScienceQa(fixture('scienceqa'), answers, { split: 'val', extract: 'llava' });
  assert.equal(val.count, 1);
  assert.equal(val.correct, 1);
  assert.equal(val.categories.SOC, null); // evaluate_acc.py prints -1 for an empty category
  assert.throws(() => scoreScienceQa(fixture('scienceqa'), answers, { split: 'dev', extract: 'llava' }), {
    name: 'InputError',
    message: /no split 'dev'/,
  });
});
