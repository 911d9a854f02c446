import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expected, fixture } from './helpers/eval.js';
import { egret as runEgret, assertInputError } from './helpers/cli.js';

const egret = (...args: string[]) => runEgret('eval', ...args);

const TEXTVQA = ['--data', fixture('textvqa', 'TextVQA_0.5.1_val.json'), '--predictions', fixture('textvqa', 'answers.jsonl')];

test('eval score textvqa --json prints one document with the official accuracy', async () => {
  const run = await egret('score', 'textvqa', ...TEXTVQA, '--json');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { task: 'textvqa', count: 16, accuracy: expected<{ accuracy: number }>('textvqa').accuracy });
});

test('eval score pope --json gives every category with the official numbers', async () => {
  const run = await egret('score', 'pope', '--data', fixture('pope', 'coco'), '--questions', fixture('pope', 'llava_pope_test.jsonl'),
    '--predictions', fixture('pope', 'answers.jsonl'), '--json');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { task: 'pope', categories: expected<{ categories: object }>('pope').categories });
});

test('eval score scienceqa --out writes the JSON atomically and prints the table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-eval-'));
  try {
    const out = join(dir, 'sqa.json');
    const run = await egret('score', 'scienceqa', '--data', fixture('scienceqa'), '--predictions', fixture('scienceqa', 'answers_lavin.jsonl'),
      '--extract', 'lavin', '--out', out);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^scienceqa\n/);
    assert.match(run.stdout, /average +46\.15%/);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(written.task, 'scienceqa');
    assert.equal(written.correct, expected<{ correct: number }>('scienceqa_lavin').correct);
    assert.deepEqual(readdirSync(dir), ['sqa.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input exits 2 with one error line: missing file, malformed line, unknown task, missing option, eval run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-eval-'));
  try {
    const malformed = join(dir, 'answers.jsonl');
    writeFileSync(malformed, '{"question_id": "a", "prompt": "p", "text": "t"}\n{"question_id": "b", "prompt": \n\n');
    assertInputError(await egret('score', 'textvqa', '--data', fixture('textvqa', 'TextVQA_0.5.1_val.json'), '--predictions', malformed),
      /answers\.jsonl:2: not valid JSON/);
    writeFileSync(malformed, '{"question_id": "a", "prompt": "p"}\n');
    assertInputError(await egret('score', 'gqa', '--data', fixture('gqa', 'testdev_balanced_questions.json'), '--predictions', malformed),
      /answers\.jsonl:1: 'text' must be a string/);
    assertInputError(await egret('score', 'textvqa', '--data', fixture('textvqa', 'TextVQA_0.5.1_val.json'), '--predictions', join(dir, 'none.jsonl')),
      /cannot read .*none\.jsonl: ENOENT/);
    assertInputError(await egret('score', 'vqav2', ...TEXTVQA), /unknown task 'vqav2'/);
    assertInputError(await egret('score', 'pope', '--data', fixture('pope', 'coco'), '--predictions', fixture('pope', 'answers.jsonl')), /--questions/);
    assertInputError(await egret('score', 'textvqa', ...TEXTVQA, '--extract', 'lavin'), /--extract does not apply to textvqa/);
    assertInputError(await egret('run', 'textvqa'), /--model, --data and --out are required/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
