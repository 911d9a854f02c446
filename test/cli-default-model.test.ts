// Without --model, generate, chat and serve run $EGRET_MODEL, else the model that ships in the package's
// models/lab-mra/: found beside the installed code whatever the working folder, and one error line when it is absent.
// A copy of the built package (bin/, dist/src, package.json; node_modules linked) stands in for an installation, so
// that these checks hold whether or not this checkout holds the shipped model; tiny-llava-hr stands in for it.
// Once models/lab-mra/ is in the checkout, the README's first command runs on it and must read the example's code.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallPrintText } from '../src/lab/smallprint.js';
import { assertInputError, ROOT, type Run } from './helpers/cli.js';

const FIXTURE = join(ROOT, 'test/fixtures/tiny-llava-hr');
const IMAGE = join(FIXTURE, 'images/wide.png');
let work: string;
let pkg: string;
let record: { question: string; generated_ids: number[] };

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'egret-default-model-'));
  pkg = join(work, 'package');
  await mkdir(pkg);
  for (const path of ['bin', 'dist/src', 'package.json']) await cp(join(ROOT, path), join(pkg, path), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
  record = JSON.parse(await readFile(join(FIXTURE, 'expected.json'), 'utf8')).images[0];
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** `egret` of the package in `root`, run in `cwd`, with EGRET_MODEL set to `model` or unset. */
function egretOf(root: string, cwd: string, model: string | undefined, ...args: string[]): Run {
  const env = { ...process.env };
  delete env['EGRET_MODEL'];
  if (model !== undefined) env['EGRET_MODEL'] = model;
  const r = spawnSync(process.execPath, [join(root, 'bin/egret'), ...args], { cwd, env, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const question = () => ['--image', IMAGE, '--prompt', record.question, '--max-new-tokens', '12', '--ignore-eos', '--threads', '1'];

test('EGRET_MODEL names the model of generate and chat without --model: the reference greedy answer', () => {
  const generated = egretOf(ROOT, ROOT, 'test/fixtures/tiny-llava-hr', 'generate', ...question(), '--json');
  assert.equal(generated.code, 0, generated.stderr);
  const out = JSON.parse(generated.stdout);
  assert.deepEqual(out.ids, record.generated_ids);
  const chat = egretOf(ROOT, ROOT, FIXTURE, 'chat', ...question());
  assert.equal(chat.code, 0, chat.stderr);
  assert.equal(chat.stdout.trim(), out.text.trim());
  // --model still wins over EGRET_MODEL.
  assertInputError(egretOf(ROOT, ROOT, FIXTURE, 'generate', '--model', join(work, 'none'), ...question()), /not a model directory/);
});

test('without --model and EGRET_MODEL, a package without its shipped model says so in one error line', () => {
  for (const command of ['generate', 'chat', 'serve']) {
    const args = command === 'serve' ? ['--port', '0'] : question();
    assertInputError(egretOf(pkg, work, undefined, command, ...args), /no --model given, EGRET_MODEL is not set, and the shipped model is missing \(.*models\/lab-mra\)/);
  }
  // A LaVIN model names its LLaMA directory: the shipped model is not one.
  assertInputError(egretOf(pkg, work, undefined, 'generate', '--clip', 'ViT-L-14.pt', '--adapter', 'checkpoint-19.pth', '--prompt', 'hi'), /a LaVIN model needs --model/);
  // The other model commands keep requiring --model.
  assertInputError(egretOf(pkg, work, FIXTURE, 'logits', '--prompt', 'hi', '--out', join(work, 'l.safetensors')), /--model is required/);
});

test("the shipped model is found in the package's models/lab-mra, not in the working folder", async () => {
  const installed = join(work, 'installed');
  await cp(pkg, installed, { recursive: true, verbatimSymlinks: true });
  await mkdir(join(installed, 'models'));
  await symlink(FIXTURE, join(installed, 'models/lab-mra'));
  const elsewhere = await mkdtemp(join(work, 'cwd-'));
  const r = egretOf(installed, elsewhere, undefined, 'generate', ...question(), '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).ids, record.generated_ids);
});

const shipped = existsSync(join(ROOT, 'models/lab-mra'));

test("the README's first command: the shipped model reads the code of examples/ticket.png", { skip: !shipped && 'models/lab-mra/ is not in this checkout yet' }, async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const command = /```sh\nnpx egret (generate [^\n]*)\n```/.exec(readme)![1]!;
  const args = [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  assert.deepEqual(args, ['generate', '--image', 'examples/ticket.png', '--prompt', 'What is the code?']);
  assert.ok(existsSync(join(ROOT, 'models/lab-mra/README.md')), 'the shipped model has its card');
  const r = egretOf(ROOT, ROOT, undefined, ...args);
  assert.equal(r.code, 0, r.stderr);
  // examples/README.md: ticket.png is sample 8 of seed 12 (test/examples.test.ts checks the pixels).
  assert.equal(r.stdout.trim(), smallPrintText(12, 8).code);
});
