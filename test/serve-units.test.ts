// The server's pure parts: request validation details, the admission queue, the address guard, the model card's title.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cardTitle } from '../src/cli/serve.js';
import { isForbiddenAddress } from '../src/serve/images.js';
import { parseChatRequest, RequestError } from '../src/serve/openai.js';
import { ByteBudget, QueueFullError, Scheduler } from '../src/serve/scheduler.js';

const LIMITS = { maxImages: 4, defaultMaxTokens: 512, maxTextChars: 1000 };

test('messages become template turns: system text before the first question, images counted per turn', () => {
  const r = parseChatRequest({
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:a' } }, { type: 'text', text: 'What is it?' }] },
      { role: 'assistant', content: 'A cat.' },
      { role: 'user', content: 'And this?' },
      { role: 'user', content: [{ type: 'image_url', image_url: 'data:b' }] },
    ],
    max_completion_tokens: 7,
    stop: 'END',
  }, LIMITS);
  assert.deepEqual(r.turns, [
    { role: 'user', text: 'Be brief.\n\nWhat is it?', images: 1 },
    { role: 'assistant', text: 'A cat.' },
    { role: 'user', text: 'And this?', images: 1 },
  ]);
  assert.deepEqual(r.imageUrls, ['data:a', 'data:b']);
  assert.equal(r.options.maxNewTokens, 7);
  assert.deepEqual(r.options.stop, ['END']);
  assert.equal(r.options.temperature, 1, "OpenAI's default");
  assert.equal(r.stream, false);
  assert.equal(r.vtw, undefined);
  assert.equal(parseChatRequest({ messages: [{ role: 'user', content: 'x' }], egret: { vtw: false } }, LIMITS).vtw, false);
  assert.equal(parseChatRequest({ messages: [{ role: 'user', content: 'x' }], egret: { vtw: { layer: 3 } } }, LIMITS).vtw, 3);
  assert.throws(() => parseChatRequest({ messages: [{ role: 'user', content: 'x' }], egret: { vtw: {} } }, LIMITS), (e: unknown) => e instanceof RequestError && e.param === 'egret.vtw.layer');
  // Text beyond any context is refused before it reaches the tokenizer (in the inference worker).
  assert.throws(() => parseChatRequest({ messages: [{ role: 'system', content: 'x'.repeat(600) }, { role: 'user', content: 'y'.repeat(401) }] }, LIMITS),
    (e: unknown) => e instanceof RequestError && e.status === 400 && e.param === 'messages' && /1003 characters of text/.test(e.message));
});

test('the scheduler runs `concurrency` at once, queues `maxQueue`, refuses the rest, and lets waiting clients leave', async () => {
  const s = new Scheduler(1, 2);
  const live = new AbortController().signal;
  const release1 = await s.acquire(live);
  const leaving = new AbortController();
  const second = s.acquire(leaving.signal);
  const third = s.acquire(live);
  await assert.rejects(s.acquire(live), QueueFullError);
  assert.deepEqual([s.active, s.queued], [1, 2]);
  leaving.abort(new Error('gone'));
  await assert.rejects(second, /gone/);
  assert.equal(s.queued, 1);
  release1();
  release1(); // a second call changes nothing
  const release3 = await third;
  assert.deepEqual([s.active, s.queued], [1, 0]);
  release3();
  assert.equal(s.active, 0);
  const budget = new ByteBudget(100);
  assert.equal(budget.take(60), true);
  assert.equal(budget.take(41), false);
  budget.give(60);
  assert.equal(budget.take(100), true);
  assert.equal(budget.inUse, 100);
});

test('the remote-image guard refuses loopback, private, link-local and reserved addresses, v4 and v6', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-address']) {
    assert.equal(isForbiddenAddress(a), true, a);
  }
  for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isForbiddenAddress(a), false, a);
});

test("a model card's first line: after YAML front matter, without heading marks", () => {
  assert.equal(cardTitle('# lab-mra: a tiny LLaVA-HR\n\nTrained by egret.\n'), 'lab-mra: a tiny LLaVA-HR');
  assert.equal(cardTitle('---\nlicense: apache-2.0\ntags: [llava-hr]\n---\n\n## lab-mra\r\nmore'), 'lab-mra');
  assert.equal(cardTitle('\n  A plain first line  \n'), 'A plain first line');
  assert.equal(cardTitle(''), null);
});
