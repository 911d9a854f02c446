import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadQuestions } from '../src/eval/questions.js';
import { scienceQaPrompt } from '../src/text/templates.js';
import { fixture } from './helpers/eval.js';
import { ROOT, egret as runEgret, assertInputError, type Run } from './helpers/cli.js';

const egret = (...args: string[]) => runEgret('eval', ...args);

const TINY_LLAMA = join(ROOT, 'test/fixtures/tiny-llama');
const TINY_LLAVA = join(ROOT, 'test/fixtures/tiny-llava15');
const IMAGES = join(ROOT, 'test/fixtures/images');

function assertOk(run: Run): void {
  assert.equal(run.code, 0, run.stderr);
}

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter((line) => line !== '');

/**
 * A text-only ScienceQA (the fixture's problems without their images, repeated under new ids) for the text-only
 * tiny-llama: `count` test problems.
 */
function textOnlyScienceQa(dir: string, count: number): string {
  const problems = JSON.parse(readFileSync(fixture('scienceqa', 'problems.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  const base = Object.values(problems);
  const out: Record<string, unknown> = {};
  const test: string[] = [];
  for (let i = 0; i < count; i++) {
    out[String(100 + i)] = { ...base[i % base.length], image: null, split: 'test' };
    test.push(String(100 + i));
  }
  const data = join(dir, 'sqa');
  mkdirSync(data);
  writeFileSync(join(data, 'problems.json'), JSON.stringify(out));
  writeFileSync(join(data, 'pid_splits.json'), JSON.stringify({ test }));
  return data;
}

/** The question count is odd so that the two shards differ in size (ceil(59 / 2) = 30, then 29). */
const QUESTIONS = 59;
const sqaRun = (data: string, out: string, ...extra: string[]) =>
  ['run', 'scienceqa', '--model', TINY_LLAMA, '--data', data, '--out', out, '--max-new-tokens', '12', '--batch', '2', '--threads', '1', ...extra];

test('eval run: interrupted and resumed, or split in shards and merged, gives the uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-eval-run-'));
  try {
    const data = textOnlyScienceQa(dir, QUESTIONS);
    const whole = join(dir, 'whole.jsonl');
    assertOk(await egret(...sqaRun(data, whole)));
    const answers = lines(whole);
    assert.equal(answers.length, QUESTIONS);
    const first = JSON.parse(answers[0]!);
    assert.deepEqual(Object.keys(first), ['question_id', 'prompt', 'text', 'answer_id', 'model_id', 'metadata']);
    assert.equal(first.question_id, '100');
    assert.equal(first.prompt, "Context: N/A\nQuestion: Which is hotter?\nOptions: (A) ice (B) fire\nAnswer with the option's letter from the given choices directly.");
    assert.equal(first.model_id, 'tiny-llama');
    assert.match(first.answer_id, /^[2-9A-HJ-NP-Za-km-z]{22}$/);
    assert.deepEqual(
      { ...first.metadata, model: undefined, egret: undefined },
      { task: 'scienceqa', model_id: 'tiny-llama', dtype: 'fp32', template: 'vicuna_v1', max_new_tokens: 12, questions: QUESTIONS, index: 0, model: undefined, egret: undefined },
    );

    // The official scorer's reader takes the file as it is.
    const score = await egret('score', 'scienceqa', '--data', data, '--predictions', whole, '--json');
    assertOk(score);
    assert.equal(JSON.parse(score.stdout).count, QUESTIONS);

    // Killed once at least two answers are on disk, then a torn line as an interrupted write leaves it.
    const resumed = join(dir, 'resumed.jsonl');
    const child = spawn(process.execPath, ['bin/egret', 'eval', ...sqaRun(data, resumed)], { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    while (!(existsSync(resumed) && lines(resumed).length >= 2)) await new Promise((resolve) => setTimeout(resolve, 5));
    child.kill('SIGKILL');
    await exited;
    const kept = lines(resumed).length;
    assert.ok(kept < QUESTIONS, `the run ended (${kept} answers) before it was killed`);
    appendFileSync(resumed, answers[kept]!.slice(0, 40));
    const rerun = await egret(...sqaRun(data, resumed));
    assertOk(rerun);
    assert.match(rerun.stdout, new RegExp(`${QUESTIONS} answers in .*resumed\\.jsonl \\(${kept} from an earlier run\\)`));
    assert.equal(readFileSync(resumed, 'utf8'), readFileSync(whole, 'utf8'));

    // A finished run resumed does nothing; other settings are refused, the file left as it was.
    assertOk(await egret(...sqaRun(data, resumed)));
    assertInputError(await egret(...sqaRun(data, resumed), '--template', 'raw'), /resumed\.jsonl:1 was written with other settings \(template "vicuna_v1" vs "raw" in this run\)/);
    assertInputError(await egret(...sqaRun(data, resumed), '--limit', '10'), /other settings \(questions 59 vs 10/);
    assert.equal(readFileSync(resumed, 'utf8'), readFileSync(whole, 'utf8'));

    const shards = [0, 1].map((i) => join(dir, `shard${i}.jsonl`));
    for (const [i, shard] of shards.entries()) assertOk(await egret(...sqaRun(data, shard, '--shard', `${i}/2`)));
    assert.deepEqual(shards.map((shard) => lines(shard).length), [30, 29]);
    assertInputError(await egret(...sqaRun(data, shards[0]!, '--shard', '1/2')), /shard0\.jsonl:1 does not answer this run's question 30/);
    const merged = join(dir, 'merged.jsonl');
    const merge = await egret('merge', '--out', merged, shards[1]!, shards[0]!);
    assertOk(merge);
    assert.equal(merge.stdout, `${QUESTIONS} answers from 2 files in ${merged}\n`);
    assert.equal(readFileSync(merged, 'utf8'), readFileSync(whole, 'utf8'));

    assertInputError(await egret('merge', '--out', merged, shards[0]!), /question 30 of 59 has no answer/);
    assertInputError(await egret('merge', '--out', merged, shards[0]!, shards[0]!), /shard0\.jsonl:1 answers question 0 again/);
    assertInputError(await egret('merge', shards[0]!), /--out and at least one shard file are required/);
    assert.equal(readFileSync(merged, 'utf8'), readFileSync(whole, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eval run refuses bad input with one error line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-eval-run-'));
  try {
    const out = join(dir, 'out.jsonl');
    const data = fixture('scienceqa');
    assertInputError(await egret(...sqaRun(join(dir, 'none'), out)), /cannot read .*none: ENOENT/);
    assertInputError(await egret(...sqaRun(data, out, '--shard', '2/2')), /--shard must be i\/n with 0 ≤ i < n/);
    assertInputError(await egret(...sqaRun(data, out, '--shard', 'x')), /--shard must be i\/n/);
    assertInputError(await egret(...sqaRun(data, out, '--limit', '0')), /--limit must be a positive integer/);
    assertInputError(await egret(...sqaRun(data, out, '--prompt', 'hi')), /--prompt does not apply to eval run/);
    assertInputError(await egret('run', 'vqav2', '--model', TINY_LLAMA), /unknown task 'vqav2'/);
    assertInputError(await egret('run', 'textvqa', '--model', TINY_LLAMA, '--data', data, '--out', out, '--split', 'val'), /--split applies to scienceqa only/);
    // Problem 1 has an image: its folder is needed, and a text-only model cannot take it.
    assertInputError(await egret(...sqaRun(data, out)), /question "1" has an image \(1\/image\.png\); give its folder with --images/);
    assert.equal(existsSync(out) ? readFileSync(out, 'utf8') : '', '');
    // Another program's answer file is refused and left as it was, even without its last newline.
    const foreign = readFileSync(fixture('scienceqa', 'answers_llava.jsonl'), 'utf8');
    writeFileSync(out, foreign);
    assertInputError(await egret(...sqaRun(data, out)), /out\.jsonl:1: no run settings in 'metadata' \(not written by egret eval run\)/);
    assertInputError(await egret('merge', '--out', join(dir, 'merged.jsonl'), out), /out\.jsonl:1: no run settings in 'metadata'/);
    for (const [text, error] of [
      [foreign.trimEnd(), /out\.jsonl:1: no run settings in 'metadata'/],
      [foreign.split('\n')[0]!, /out\.jsonl: its last line is incomplete and not an answer egret writes/],
    ] as const) {
      writeFileSync(out, text);
      assertInputError(await egret(...sqaRun(data, out)), error);
      assert.equal(readFileSync(out, 'utf8'), text);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** An image folder with a fixture picture under every name `names` gives (the tiny model only needs pixels). */
function imageFolder(dir: string, names: string[]): string {
  const folder = join(dir, 'images');
  for (const name of names) {
    mkdirSync(join(folder, name, '..'), { recursive: true });
    copyFileSync(join(IMAGES, 'wide_rgb.png'), join(folder, name));
  }
  return folder;
}

test('eval run with images (tiny LLaVA-1.5): ScienceQA from problems.json or LLaVA\'s converted file, POPE, VTW recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-eval-run-'));
  try {
    const images = imageFolder(dir, ['1/image.png', '3/image.png', '6/image.png', '7/image.png', '9/image.png', '11/image.png']);
    const llavaRun = (data: string, out: string, ...extra: string[]) =>
      ['run', 'scienceqa', '--model', TINY_LLAVA, '--data', data, '--images', images, '--out', out, '--max-new-tokens', '6', '--batch', '4', '--threads', '1', ...extra];
    const fromProblems = join(dir, 'problems.jsonl');
    const fromConverted = join(dir, 'converted.jsonl');
    assertOk(await egret(...llavaRun(fixture('scienceqa'), fromProblems)));
    assertOk(await egret(...llavaRun(fixture('scienceqa', 'llava_test_CQM-A.json'), fromConverted)));
    // egret builds from problems.json exactly the questions LLaVA's converter writes.
    assert.equal(readFileSync(fromProblems, 'utf8'), readFileSync(fromConverted, 'utf8'));
    const first = JSON.parse(lines(fromProblems)[0]!);
    assert.equal(first.prompt, "<image>\nContext: N/A\nQuestion: Which is hotter?\nOptions: (A) ice (B) fire\nAnswer with the option's letter from the given choices directly.");
    const score = await egret('score', 'scienceqa', '--data', fixture('scienceqa'), '--predictions', fromProblems, '--json');
    assertOk(score);
    assert.equal(JSON.parse(score.stdout).count, 13);
    assert.notEqual(JSON.parse(score.stdout).img_accuracy, null);

    const vtw = join(dir, 'vtw.jsonl');
    assertOk(await egret(...llavaRun(fixture('scienceqa'), vtw, '--limit', '2', '--vtw-layer', '2')));
    assert.equal(JSON.parse(lines(vtw)[0]!).metadata.vtw_layer, 2);
    assertInputError(await egret(...llavaRun(fixture('scienceqa'), vtw, '--limit', '2', '--vtw-layer', 'off')), /other settings \(vtw_layer 2 vs \(none\) in this run\)/);

    const popeQuestions = fixture('pope', 'llava_pope_test.jsonl');
    const popeImages = lines(popeQuestions).map((line) => JSON.parse(line).image as string);
    const pope = join(dir, 'pope.jsonl');
    assertOk(await egret('run', 'pope', '--model', TINY_LLAVA, '--data', popeQuestions, '--images', imageFolder(join(dir, 'pope'), popeImages),
      '--out', pope, '--max-new-tokens', '3', '--batch', '4', '--threads', '1'));
    const popeFirst = JSON.parse(lines(pope)[0]!);
    assert.equal(popeFirst.question_id, 1); // an integer, as in the question file
    assert.equal(popeFirst.prompt, 'Is there a dog in the image?\nAnswer the question using a single word or phrase.');
    assertOk(await egret('score', 'pope', '--data', fixture('pope', 'coco'), '--questions', popeQuestions, '--predictions', pope));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ScienceQA questions: LLaVA\'s converter (CQM-A) and model_vqa_science.py, LaVIN\'s QCM-ALE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-eval-run-'));
  try {
    // Edge cases, with what LLaVA-HR's scripts/convert_sqa_to_llava.py wrote for them (then model_vqa_science.py's
    // `.replace('<image>', '').strip()`): double spaces halved once, a blank hint, an input ending in "BECAUSE:".
    const problems = {
      21: { question: 'Which  is   right?', choices: ['a  b', 'BECAUSE:'], answer: 0, hint: '  ', image: null },
      22: { question: 'Tabs\tand <image> tag?', choices: ['x'], answer: 0, hint: ' Hint with trailing space ', image: 'image.png' },
    };
    writeFileSync(join(dir, 'problems.json'), JSON.stringify(problems));
    writeFileSync(join(dir, 'pid_splits.json'), JSON.stringify({ test: ['21', '22'] }));
    const single = "\nAnswer with the option's letter from the given choices directly.";
    const llava = loadQuestions('scienceqa', 'llava', dir, 'test');
    assert.deepEqual(llava, [
      { id: '21', message: `Context: N/A\nQuestion: Which is  right?\nOptions: (A) a b (B)${single}`, image: undefined, prompt: `Context: N/A\nQuestion: Which is  right?\nOptions: (A) a b (B)${single}` },
      {
        id: '22',
        message: `Context: Hint with trailing space\nQuestion: Tabs\tand  tag?\nOptions: (A) x${single}`,
        image: '22/image.png',
        prompt: `<image>\nContext: Hint with trailing space\nQuestion: Tabs\tand  tag?\nOptions: (A) x${single}`,
      },
    ]);
    const lavin = loadQuestions('scienceqa', 'lavin', dir, 'test');
    assert.equal(lavin[0]!.message, scienceQaPrompt({ ...problems[21], choices: problems[21].choices, answer: 0, lecture: '', solution: '' }));
    assert.equal(lavin[1]!.prompt, `<image>\n${lavin[1]!.message}`);
    assert.throws(() => loadQuestions('scienceqa', 'lavin', fixture('scienceqa', 'llava_test_CQM-A.json'), 'test'), /LaVIN builds its ScienceQA prompts from problems\.json/);
    assert.throws(() => loadQuestions('pope', 'lavin', fixture('pope', 'llava_pope_test.jsonl'), 'test'), /LaVIN's official evaluation covers ScienceQA only/);
    assert.throws(() => loadQuestions('scienceqa', 'llava', dir, 'val'), /no split 'val'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
