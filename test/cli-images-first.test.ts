// Images are checked and decoded before a model loads, in every command that takes them: with a model path that
// does not exist, the error is the image's, so a mistyped image costs no load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertInputError, egret } from './helpers/cli.js';

const NO_MODEL = 'test/fixtures/no-such-model';

test('generate, logits, chat, calibrate and eval run refuse a bad or missing image before touching the model', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-images-first-'));
  try {
    const missing = join(dir, 'missing.png');
    const broken = join(dir, 'broken.png');
    await writeFile(broken, Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(64, 7)]));
    for (const [image, pattern] of [[missing, /missing\.png: cannot read image \(ENOENT\)/], [broken, /broken\.png: cannot decode image/]] as const) {
      assertInputError(await egret('generate', '--model', NO_MODEL, '--image', image, '--prompt', 'hi'), pattern);
      assertInputError(await egret('logits', '--model', NO_MODEL, '--image', image, '--prompt', 'hi', '--out', join(dir, 'l.safetensors')), pattern);
      assertInputError(await egret('chat', '--model', NO_MODEL, '--image', image, '--prompt', 'hi'), pattern);
      const data = join(dir, 'calib.jsonl');
      await writeFile(data, `${JSON.stringify({ image: image.slice(dir.length + 1), prompt: 'hi' })}\n`);
      assertInputError(await egret('calibrate', 'vtw', '--model', NO_MODEL, '--data', data), pattern);
    }
    const questions = join(dir, 'questions.jsonl');
    await writeFile(questions, `${JSON.stringify({ question_id: 1, image: 'a.png', text: 'What is written?' })}\n`);
    assertInputError(await egret('eval', 'run', 'textvqa', '--model', NO_MODEL, '--data', questions,
      '--images', join(dir, 'no-such-folder'), '--out', join(dir, 'answers.jsonl')), /--images .*no-such-folder: not a folder/);
    // A question whose image is not in the folder: found before the model loads, no answer written.
    assertInputError(await egret('eval', 'run', 'textvqa', '--model', NO_MODEL, '--data', questions,
      '--images', dir, '--out', join(dir, 'answers.jsonl')), /question 1: image .*a\.png does not exist/);
    assert.equal(existsSync(join(dir, 'answers.jsonl')) ? readFileSync(join(dir, 'answers.jsonl'), 'utf8') : '', '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
