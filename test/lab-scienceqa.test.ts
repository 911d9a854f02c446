// The ScienceQA-like task: the official layout, read by egret's ScienceQA reader in both prompt styles and scored
// by `egret eval score scienceqa`; answers that follow from the pictures (checked against the drawn objects and
// their pixels) and from the text; image and text-only problems, lectures and solutions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadQuestions } from '../src/eval/questions.js';
import { writeScienceQaDataset } from '../src/lab/datasets.js';
import { COLOURS, scienceQaSample, SPLITS, type OfficialProblem } from '../src/lab/scienceqa.js';
import { scienceQaPrompt } from '../src/text/templates.js';
import { decodeImage } from '../src/vision/decode.js';
import { egret } from './helpers/cli.js';

const SEED = 3;
const COUNT = 80;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egret-lab-sqa-'));
  await writeScienceQaDataset(join(dir, 'sqa'), { seed: SEED, count: COUNT });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const readJson = <T>(name: string): T => JSON.parse(readFileSync(join(dir, 'sqa', name), 'utf8')) as T;
/** The keys of a problem in the official problems.json, in its order. */
const OFFICIAL_KEYS = ['question', 'choices', 'answer', 'hint', 'image', 'task', 'grade', 'subject', 'topic', 'category', 'skill', 'lecture', 'solution', 'split'];

test('the official layout: problems.json, pid_splits.json, images/<split>/<pid>/image.png, captions.json', async () => {
  const problems = readJson<Record<string, OfficialProblem>>('problems.json');
  const splits = readJson<Record<string, string[]>>('pid_splits.json');
  assert.deepEqual(Object.keys(splits), [...SPLITS]);
  assert.deepEqual(Object.keys(problems), Array.from({ length: COUNT }, (_, i) => String(i + 1)));
  assert.deepEqual(readJson('captions.json'), { captions: {} });
  let pictures = 0, hints = 0;
  for (const [pid, problem] of Object.entries(problems)) {
    assert.deepEqual(Object.keys(problem), OFFICIAL_KEYS, pid);
    assert.ok(splits[problem.split]!.includes(pid), pid);
    assert.ok(problem.choices.length >= 2 && problem.choices.length <= 5 && new Set(problem.choices).size === problem.choices.length, pid);
    assert.ok(Number.isInteger(problem.answer) && problem.answer >= 0 && problem.answer < problem.choices.length, pid);
    assert.ok(problem.lecture.length > 0 && problem.solution.length > 0, pid);
    assert.equal(problem.task, 'closed choice');
    assert.match(problem.grade, /^grade([1-9]|1[0-2])$/);
    const image = join(dir, 'sqa', 'images', problem.split, pid, 'image.png');
    assert.equal(existsSync(image), problem.image === 'image.png', pid);
    if (problem.image !== null) {
      assert.equal(problem.image, 'image.png');
      pictures++;
    }
    if (problem.hint !== '') hints++;
  }
  assert.ok(pictures > COUNT / 4 && pictures < (3 * COUNT) / 4, `${pictures} picture problems of ${COUNT}`);
  assert.ok(hints > 0);
  // Answers are spread over the letters.
  assert.ok(new Set(Object.values(problems).map((p) => p.answer)).size >= 3);
});

test('answers follow from the pictures: the drawn objects and their pixels', async () => {
  let checked = 0;
  for (let index = 0; index < COUNT; index++) {
    const { pid, problem, scene } = scienceQaSample(SEED, index);
    if (!scene) continue;
    const answer = problem.choices[problem.answer]!;
    const objects = scene.objects;
    const q = problem.question;
    let match: RegExpExecArray | null;
    if ((match = /^What color is the (\w+)\?$/.exec(q))) {
      const found = objects.filter((o) => o.shape === match![1]);
      assert.equal(found.length, 1, q);
      assert.equal(found[0]!.colour, answer, q);
    } else if ((match = /^Which shape is (\w+)\?$/.exec(q))) {
      const found = objects.filter((o) => o.colour === match![1]);
      assert.equal(found.length, 1, q);
      assert.equal(found[0]!.shape, answer, q);
    } else if ((match = /^How many (\w+)s are there\?$/.exec(q))) {
      assert.equal(objects.filter((o) => o.shape === match![1]).length, Number(answer), q);
    } else if ((match = /^Is the (\w+) (\w+) (to the left or to the right of|above or below) the (\w+) (\w+)\?$/.exec(q))) {
      const find = (colour: string, shape: string) => objects.find((o) => o.colour === colour && o.shape === shape)!;
      const [a, b] = [find(match[1]!, match[2]!), find(match[4]!, match[5]!)];
      const expected = match[3] === 'above or below' ? (a.cy < b.cy ? 'above' : 'below') : a.cx < b.cx ? 'to the left' : 'to the right';
      assert.equal(answer, expected, q);
    } else if ((match = /^Are there more (\w+)s or (\w+)s\?$/.exec(q))) {
      const count = (shape: string) => objects.filter((o) => o.shape === shape).length;
      assert.equal(answer, count(match[1]!) > count(match[2]!) ? `${match[1]}s` : `${match[2]}s`, q);
    } else {
      assert.fail(`a picture question of no known family: ${q}`);
    }
    // Each object is drawn where and in the colour the scene says: its centre's pixel.
    const img = await decodeImage(readFileSync(join(dir, 'sqa', 'images', problem.split, pid, 'image.png')));
    assert.deepEqual([img.width, img.height], [scene.width, scene.height]);
    for (const o of objects) {
      const at = (o.cy * img.width + o.cx) * 3;
      const pixel = [img.data[at]!, img.data[at + 1]!, img.data[at + 2]!];
      pixel.forEach((v, c) => assert.ok(Math.abs(v - COLOURS[o.colour][c]!) <= 16, `${pid}: ${o.colour} ${o.shape} drawn as ${pixel}`));
    }
    checked++;
  }
  assert.ok(checked >= 20, `${checked} picture problems checked`);
});

test('answers follow from the text: guide words, alphabetical order, magnets, thermal energy', () => {
  const families = new Set<string>();
  for (let index = 0; index < 400; index++) {
    const { problem } = scienceQaSample(SEED, index);
    const answer = problem.choices[problem.answer]!;
    const others = problem.choices.filter((_, i) => i !== problem.answer);
    let match: RegExpExecArray | null;
    if ((match = /^Which word would you find on a dictionary page with the following guide words\?\n(\w+) - (\w+)$/.exec(problem.question))) {
      const between = (w: string) => match![1]! < w && w < match![2]!;
      assert.ok(between(answer) && !others.some(between), problem.question);
    } else if (problem.question === 'Which word comes first in alphabetical order?') {
      assert.equal(answer, [...problem.choices].sort()[0]);
    } else if ((match = /The (north|south) pole of one magnet faces the (north|south) pole/.exec(problem.hint))) {
      assert.equal(answer, match[1] === match[2] ? 'repel' : 'attract');
    } else if ((match = /^Which object has (more|less) thermal energy\?$/.exec(problem.question))) {
      const temperature = (choice: string) => Number(/at (\d+)°C$/.exec(choice)![1]);
      const best = problem.choices.map(temperature).sort((a, b) => (match![1] === 'more' ? b - a : a - b))[0];
      assert.equal(temperature(answer), best);
    } else {
      continue;
    }
    families.add(problem.skill);
  }
  assert.equal(families.size, 4, [...families].join(', '));
});

test("egret's ScienceQA reader asks LaVIN's QCM-ALE prompts, and egret eval score scienceqa scores the answers", async () => {
  const problems = readJson<Record<string, OfficialProblem>>('problems.json');
  const splits = readJson<Record<string, string[]>>('pid_splits.json');
  const questions = loadQuestions('scienceqa', 'lavin', join(dir, 'sqa'), 'test');
  assert.deepEqual(questions.map((q) => q.id), splits['test']);
  for (const q of questions) {
    const problem = problems[String(q.id)]!;
    assert.equal(q.message, scienceQaPrompt(problem));
    assert.equal(q.image, problem.image === null ? undefined : `${q.id}/image.png`);
  }
  assert.equal(loadQuestions('scienceqa', 'llava', join(dir, 'sqa'), 'train').length, splits['train']!.length);

  const letters = 'ABCDE';
  const answerFile = (name: string, pick: (p: OfficialProblem) => number) => {
    const file = join(dir, `${name}.jsonl`);
    writeFileSync(file, questions.map((q) => `${JSON.stringify({ question_id: q.id, prompt: q.prompt, text: `The answer is ${letters[pick(problems[String(q.id)]!)]}.` })}\n`).join(''));
    return file;
  };
  for (const [name, pick, accuracy] of [['right', (p: OfficialProblem) => p.answer, 1], ['wrong', (p: OfficialProblem) => (p.answer + 1) % p.choices.length, 0]] as const) {
    const run = await egret('eval', 'score', 'scienceqa', '--data', join(dir, 'sqa'), '--predictions', answerFile(name, pick), '--split', 'test', '--extract', 'lavin', '--json');
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.count, splits['test']!.length);
    assert.equal(result.accuracy, accuracy);
    assert.equal(result.failed, 0);
  }
});

test('the same seed writes the same files', async () => {
  await writeScienceQaDataset(join(dir, 'again'), { seed: SEED, count: 12 });
  await writeScienceQaDataset(join(dir, 'again2'), { seed: SEED, count: 12 });
  for (const name of ['problems.json', 'pid_splits.json']) assert.deepEqual(readFileSync(join(dir, 'again', name)), readFileSync(join(dir, 'again2', name)));
  await assert.rejects(writeScienceQaDataset(join(dir, 'again'), { seed: SEED, count: 12 }), /is not empty/);
});
