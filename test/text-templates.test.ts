import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InputError } from '../src/errors.js';
import { IMAGE_TOKEN_INDEX, tokenizeImagePrompt } from '../src/text/image-prompt.js';
import { loadTokenizer } from '../src/text/load.js';
import {
  VICUNA_V1,
  renderPrompt,
  scienceQaPrompt,
  scienceQaTarget,
  type ScienceQaProblem,
} from '../src/text/templates.js';

const fixtures = 'test/fixtures';
const readJson = (path: string): any => JSON.parse(readFileSync(`${fixtures}/${path}`, 'utf8'));

test('vicuna_v1 single turn reproduces the LLaVA prompts and ids (tokenizer fixture)', async () => {
  const tokenizer = await loadTokenizer(`${fixtures}/tokenizer/tokenizer.model`);
  const { llava_prompts } = readJson('tokenizer/expected.json');
  for (const c of llava_prompts as { question: string; prompt: string; input_ids: number[] }[]) {
    const images = c.input_ids.includes(IMAGE_TOKEN_INDEX) ? 1 : 0;
    const prompt = renderPrompt('vicuna_v1', [{ role: 'user', text: c.question, images }]);
    assert.equal(prompt, c.prompt);
    assert.deepEqual(tokenizeImagePrompt(tokenizer, prompt), c.input_ids);
  }
});

test('vicuna_v1 prompts of tiny-llava15 and tiny-llava-hr, through each model directory', async () => {
  const llava15 = await loadTokenizer(`${fixtures}/tiny-llava15`);
  assert.equal(llava15.vocabSize, 401, 'added_tokens.json adds <image> = 400');
  assert.equal(llava15.pieceToId('<image>'), 400);
  assert.equal(llava15.idToPiece(400), '<image>');
  for (const s of readJson('tiny-llava15/expected/summary.json').samples) {
    const prompt = renderPrompt('vicuna_v1', [{ role: 'user', text: s.question, images: 1 }]);
    assert.equal(prompt, s.prompt);
    assert.deepEqual(tokenizeImagePrompt(llava15, prompt), s.input_ids_llava);
    assert.equal(llava15.decode(s.greedy_ids), s.greedy_text);
  }
  const hr = await loadTokenizer(`${fixtures}/tiny-llava-hr`);
  for (const image of readJson('tiny-llava-hr/expected.json').images) {
    const prompt = renderPrompt('vicuna_v1', [{ role: 'user', text: image.question, images: 1 }]);
    assert.equal(prompt, image.prompt);
    assert.deepEqual(tokenizeImagePrompt(hr, prompt), image.input_ids);
  }
});

test('tiny-llama: prompt ids with BOS, decoded prompts and greedy text', async () => {
  const llama = await loadTokenizer(`${fixtures}/tiny-llama`);
  const prompts = readJson('tiny-llama/expected/summary.json').prompts as {
    input_ids: number[];
    prompt_text: string;
    greedy_ids: number[];
    greedy_text: string;
  }[];
  // Prompt 2 is a hand-made id list: only its decoding is checked.
  for (const p of prompts.slice(0, 2)) assert.deepEqual(llama.encode(p.prompt_text), p.input_ids);
  for (const p of prompts) {
    assert.equal(llama.decode(p.input_ids), p.prompt_text);
    assert.equal(llama.decode(p.greedy_ids), p.greedy_text);
  }
});

test('vicuna_v1 chat history: answers end with sep2', () => {
  const prompt = renderPrompt('vicuna_v1', [
    { role: 'user', text: 'q1', images: 1 },
    { role: 'assistant', text: 'a1' },
    { role: 'user', text: 'q2' },
  ]);
  // llava/conversation.py SeparatorStyle.TWO: system + sep, then "ROLE: message" + sep / sep2 alternately.
  assert.equal(prompt, `${VICUNA_V1.system} USER: <image>\nq1 ASSISTANT: a1</s>USER: q2 ASSISTANT:`);
});

test('raw keeps the text as it is', () => {
  assert.equal(renderPrompt('raw', [{ role: 'user', text: 'Describe.', images: 1 }]), '<image>\nDescribe.');
  assert.equal(renderPrompt('raw', [{ role: 'user', text: 'The cat' }]), 'The cat');
});

test('lavin_sqa: ScienceQA prompt, target and LaVIN token list (tiny-lavin)', async () => {
  const tokenizer = await loadTokenizer(`${fixtures}/tiny-lavin/llama`);
  for (const s of readJson('tiny-lavin/expected.json').samples) {
    const problem = s.problem as ScienceQaProblem;
    assert.equal(scienceQaPrompt(problem), s.prompt, s.key);
    assert.equal(scienceQaTarget(problem), s.target, s.key);
    assert.deepEqual(tokenizer.encode(s.prompt, { bos: false }), s.prompt_ids_no_bos);
    const prompt = renderPrompt('lavin_sqa', [{ role: 'user', text: s.prompt, images: s.indicator }]);
    assert.deepEqual(tokenizeImagePrompt(tokenizer, prompt), s.input_ids_contract, s.key);
    // LaVIN decodes prompt (image placeholders are id 0, <unk>) and answer together.
    for (const mode of ['official', 'corrected']) {
      const generation = s.generation[mode];
      assert.equal(tokenizer.decode([...s.input_ids, ...generation.ids]), generation.decoded_with_prompt_cut_at_eos);
      assert.equal(tokenizer.decode(generation.ids), generation.decoded_new_tokens);
    }
  }
});

test('templates refuse malformed chats', () => {
  const bad = (fn: () => unknown, pattern: RegExp): void => assert.throws(fn, (e: unknown) => e instanceof InputError && pattern.test(e.message));
  bad(() => renderPrompt('vicuna_v1', [{ role: 'assistant', text: 'a' }]), /turn 0 is from 'assistant'/);
  bad(() => renderPrompt('vicuna_v1', [{ role: 'user', text: 'q' }, { role: 'assistant', text: 'a' }]), /last chat turn/);
  bad(() => renderPrompt('vicuna_v1', []), /last chat turn/);
  bad(
    () => renderPrompt('lavin_sqa', [{ role: 'user', text: 'q' }, { role: 'assistant', text: 'a' }, { role: 'user', text: 'q' }]),
    /single user turn/,
  );
  bad(() => renderPrompt('lavin_sqa', [{ role: 'user', text: 'q', images: 2 }]), /at most one image/);
});

test('loadTokenizer reports missing tokenizers', async () => {
  await assert.rejects(loadTokenizer(`${fixtures}/images`), (e: unknown) => e instanceof InputError && /no tokenizer\.model or tokenizer\.json in/.test(e.message));
  await assert.rejects(loadTokenizer(`${fixtures}/nowhere`), (e: unknown) => e instanceof InputError && /does not exist/.test(e.message));
});
