// `egret lab generate`: the same seed writes byte-identical datasets in two processes, another seed other ones;
// the small-print files are read and scored by egret's own eval (TextVQA layout, exact match); bad input is one
// error line and exit 2, with nothing written; an unknown subcommand names the available ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { assertInputError, egret } from './helpers/cli.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'egret-lab-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every file under `root`, by relative path. */
function files(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(root, path), readFileSync(path));
    }
  };
  walk(root);
  return out;
}

test('egret lab generate: the same seed gives byte-identical files, another seed other files', async () => {
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name, i) => egret('lab', 'generate', '--out', join(dir, name), '--count', '3', '--seed', i === 2 ? '8' : '7')));
  for (const run of [a, b, c]) assert.equal(run.code, 0, run.stderr);
  // Not a TTY: no progress drawn.
  assert.equal(a!.stderr, '');
  const [first, second, other] = ['a', 'b', 'c'].map((name) => files(join(dir, name)));
  assert.deepEqual([...first!.keys()], [
    'scienceqa/captions.json', ...[...first!.keys()].filter((k) => k.startsWith('scienceqa/images/')), 'scienceqa/pid_splits.json', 'scienceqa/problems.json',
    'smallprint/annotations.json', 'smallprint/images/000000.png', 'smallprint/images/000001.png', 'smallprint/images/000002.png',
    'smallprint/llava.json', 'smallprint/questions.jsonl', 'smallprint/samples.jsonl',
  ]);
  assert.deepEqual(second, first);
  assert.notDeepEqual(other!.get('smallprint/images/000000.png'), first!.get('smallprint/images/000000.png'));
  assert.notDeepEqual(other!.get('scienceqa/problems.json'), first!.get('scienceqa/problems.json'));
});

test('the small-print files: LLaVA conversations and question file, scored by egret eval score textvqa as exact match', async () => {
  const out = join(dir, 'sp');
  const run = await egret('lab', 'generate', '--task', 'smallprint', '--out', out, '--count', '4', '--seed', '2');
  assert.equal(run.code, 0, run.stderr);
  const questions = readFileSync(join(out, 'questions.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const samples = readFileSync(join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const llava = JSON.parse(readFileSync(join(out, 'llava.json'), 'utf8'));
  assert.equal(questions.length, 4);
  questions.forEach((q, i) => {
    assert.deepEqual(Object.keys(q), ['question_id', 'image', 'text']);
    assert.equal(q.text, `${samples[i].question}\nAnswer the question using a single word or phrase.`);
    assert.deepEqual(llava[i].conversations, [{ from: 'human', value: `<image>\n${q.text}` }, { from: 'gpt', value: samples[i].code }]);
    assert.equal(llava[i].image, q.image);
  });
  // Answers as `egret eval run` writes them: the prompt is the question's text.
  const answers = (text: (i: number) => string) => {
    const file = join(dir, `sp-answers-${text(0)}.jsonl`);
    writeFileSync(file, questions.map((q, i) => `${JSON.stringify({ question_id: q.question_id, prompt: q.text, text: text(i) })}\n`).join(''));
    return file;
  };
  const score = async (file: string) => {
    const r = await egret('eval', 'score', 'textvqa', '--data', join(out, 'annotations.json'), '--predictions', file, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).accuracy;
  };
  assert.equal(await score(answers((i) => samples[i].code)), 1);
  assert.equal(await score(answers((i) => (i < 1 ? samples[i].code : 'XXXX'))), 0.25);
});

test('egret lab: bad input is one error line, exit 2, nothing written; an unknown subcommand is named', async () => {
  assertInputError(await egret('lab', 'tickets'), /egret lab tickets: unknown subcommand; available: egret lab \[--quick\], egret lab generate\|tokenizer/);
  assertInputError(await egret('lab', '--quick', '--threads', '0'), /--threads must be an integer from 1/);
  assertInputError(await egret('lab', 'generate', '--count', '2'), /--out is required; usage: egret lab generate/);
  assertInputError(await egret('lab', 'generate', '--out', join(dir, 'x'), '--task', 'tickets'), /--task must be smallprint or scienceqa, not 'tickets'/);
  assertInputError(await egret('lab', 'generate', '--out', join(dir, 'x'), '--count', '0'), /--count must be an integer from 1 to/);
  assertInputError(await egret('lab', 'generate', '--out', join(dir, 'x'), '--seed=-1'), /--seed must be an integer from 0/);
  assertInputError(await egret('lab', 'generate', '--out', join(dir, 'x'), '--cuont', '2'), /did you mean --count\?/);
  assert.throws(() => statSync(join(dir, 'x')), /ENOENT/);
  // A folder with files is refused before anything is written, even when only one task's folder is taken.
  const taken = join(dir, 'taken');
  const first = await egret('lab', 'generate', '--task', 'scienceqa', '--out', join(taken, 'scienceqa'), '--count', '1');
  assert.equal(first.code, 0, first.stderr);
  assertInputError(await egret('lab', 'generate', '--out', taken, '--count', '1'), /taken\/scienceqa is not empty/);
  assert.deepEqual(readdirSync(taken), ['scienceqa']);
});
