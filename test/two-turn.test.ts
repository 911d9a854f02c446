// vicuna_v1 chat history token for token as original LLaVA tokenises it (test/fixtures/tiny-llava15/README.md,
// "Two-turn conversation"): the `</s>` that ends an assistant turn is the EOS id, not the characters <, /, s, >.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { IMAGE_PLACEHOLDER, IMAGE_TOKEN_INDEX, tokenizeImagePrompt } from '../src/text/image-prompt.js';
import { loadTokenizer } from '../src/text/load.js';
import { SentencePieceTokenizer } from '../src/text/sentencepiece.js';
import { renderPrompt, type ChatTurn } from '../src/text/templates.js';
import { egretSync } from './helpers/cli.js';
import { dataUrl, startServer, type RunningServer } from './helpers/serve.js';

const DIR = 'test/fixtures/tiny-llava15';
const IMAGE = 'test/fixtures/images/rgba.png';
const reference = JSON.parse(readFileSync(`${DIR}/expected/two_turn.json`, 'utf8')) as { turns: ChatTurn[]; prompt: string; input_ids: number[] };
const bare = await SentencePieceTokenizer.fromFile(`${DIR}/tokenizer.model`);

/**
 * The ids original LLaVA gives a vicuna_v1 prompt, written out from the official rules with bare SentencePiece:
 * tokenizer_image_token's chunks, each cut at `</s>` (EOS) by the slow LlamaTokenizer, every part encoded alone.
 */
function officialIds(prompt: string): number[] {
  const chunks = prompt.split(IMAGE_PLACEHOLDER).map((chunk) => chunk.split('</s>').flatMap((part, i) => [...(i > 0 ? [bare.eosId] : []), ...bare.encode(part, { bos: false })]));
  return [bare.bosId, ...chunks.flatMap((ids, i) => (i > 0 ? [IMAGE_TOKEN_INDEX, ...ids] : ids))];
}

/** `egret generate` on given ids and the image: the greedy answer the conversation's prompt must produce. */
function answerTo(ids: number[], tokens: number): { text: string; stats: { prompt_tokens: number } } {
  const r = egretSync('generate', '--model', DIR, '--ids', ids.join(','), '--image', IMAGE, '--max-new-tokens', String(tokens), '--ignore-eos', '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("the model's tokenizer gives the reference ids of a two-turn conversation with an image; LaVIN's reads </s> as text", async () => {
  assert.equal(renderPrompt('vicuna_v1', reference.turns), reference.prompt);
  assert.deepEqual(tokenizeImagePrompt(await loadTokenizer(DIR), reference.prompt), reference.input_ids);
  assert.equal(reference.input_ids.filter((id) => id === 2).length, 1);
  assert.deepEqual(officialIds(reference.prompt), reference.input_ids, 'the rules written out in this test');
  // Meta's layout is LaVIN's, which calls SentencePiece itself.
  const lavin = await loadTokenizer('test/fixtures/tiny-lavin/llama');
  assert.ok(!lavin.encode('a</s>b', { bos: false }).includes(lavin.eosId));
});

let server: RunningServer;
before(async () => {
  server = await startServer(DIR);
});
after(async () => {
  assert.equal(await server?.stop(), 0, server?.log());
});

test('the server answers the conversation as egret generate answers the reference ids', async () => {
  const expected = answerTo(reference.input_ids, 8);
  const [q1, a1, q2] = reference.turns;
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: await dataUrl(IMAGE) } }, { type: 'text', text: q1!.text }] },
        { role: 'assistant', content: a1!.text },
        { role: 'user', content: q2!.text },
      ],
      max_tokens: 8, temperature: 0, ignore_eos: true,
    }),
  });
  const body = (await response.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.usage.prompt_tokens, expected.stats.prompt_tokens);
  assert.equal(body.choices[0]!.message.content, expected.text);
});

test("egret chat's second answer is the answer to the official ids of the conversation so far", () => {
  const [q1, , q2] = reference.turns;
  const first = answerTo(officialIds(renderPrompt('vicuna_v1', [q1!])), 6).text;
  const history: ChatTurn[] = [q1!, { role: 'assistant', text: first.trim() }, q2!];
  const second = answerTo(officialIds(renderPrompt('vicuna_v1', history)), 6).text;
  const chat = spawnSync(process.execPath, ['bin/egret', 'chat', '--model', DIR, '--image', IMAGE, '--max-new-tokens', '6', '--ignore-eos'],
    { input: `${q1!.text}\n${q2!.text}\n`, encoding: 'utf8' });
  assert.equal(chat.status, 0, chat.stderr);
  assert.equal(chat.stdout, `${first}\n${second}\n`);
});
