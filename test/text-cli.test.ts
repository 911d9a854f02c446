import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertInputError, egret } from './helpers/cli.js';

const expected = JSON.parse(readFileSync('test/fixtures/tokenizer/expected.json', 'utf8'));

test('egret tokenize --json prints the ids, BOS first unless --no-bos', async () => {
  const { text, ids } = expected.encode[3];
  const withBos = await egret('tokenize', '--model', 'test/fixtures/tiny-llava15', '--text', text, '--json');
  assert.equal(withBos.code, 0, withBos.stderr);
  assert.deepEqual(JSON.parse(withBos.stdout), { ids: [expected.bos_id, ...ids] });
  const noBos = await egret('tokenize', '--model', 'test/fixtures/tokenizer/tokenizer.model', '--text', text, '--no-bos', '--json');
  assert.equal(noBos.code, 0, noBos.stderr);
  assert.deepEqual(JSON.parse(noBos.stdout), { ids });
});

test("egret tokenize finds a Meta LLaMA tokenizer one level above the weights (LaVIN's base)", async () => {
  const { text, ids } = expected.encode[2];
  const root = mkdtempSync(join(tmpdir(), 'egret-meta-'));
  try {
    mkdirSync(join(root, '7B'));
    copyFileSync('test/fixtures/tiny-lavin/llama/params.json', join(root, '7B', 'params.json'));
    copyFileSync('test/fixtures/tiny-lavin/llama/tokenizer.model', join(root, 'tokenizer.model'));
    const run = await egret('tokenize', '--model', join(root, '7B'), '--text', text, '--json');
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout).ids, [expected.bos_id, ...ids]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('a corrupt tokenizer.model exits 2 with one error line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-tokenize-'));
  try {
    const model = join(dir, 'tokenizer.model');
    writeFileSync(model, readFileSync('test/fixtures/tokenizer/tokenizer.model').subarray(0, 777));
    assertInputError(await egret('tokenize', '--model', dir, '--text', 'hi', '--json'), /^error: .*tokenizer\.model: not a SentencePiece model/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('bad usage and missing files exit 2', async () => {
  assertInputError(await egret('tokenize', '--text', 'hi'), /^error: --model and --text are required/);
  assertInputError(await egret('tokenize', '--model', 'test/fixtures/tokenizer', '--text', 'x', '--bogus'), /^error: .*--bogus/);
  assertInputError(await egret('tokenize', '--model', 'test/fixtures/missing', '--text', 'x'), /^error: tokenizer path .* does not exist/);
});
