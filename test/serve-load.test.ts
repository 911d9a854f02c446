// 32 concurrent streaming requests through the openai client, a third of which disconnect midway: the others
// complete, the disconnected ones stop generating at once, the server stays up and its memory comes back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { metric, startServer, type RunningServer } from './helpers/serve.js';

let server: RunningServer;

before(async () => {
  server = await startServer('test/fixtures/tiny-llama');
});

after(async () => {
  assert.equal(await server?.stop(), 0, server?.log());
  assert.doesNotMatch(server.log(), /internal failure/);
});

const MAX_TOKENS = 48;
const LEAVE_AFTER = 4;
// Those that leave ask for far more than they read: on a busy machine a client slow to read its 4 chunks found
// the server done with all 48 tokens, and nothing left to cancel (10 cancelled of 11 under two training jobs).
const LEAVER_MAX_TOKENS = 1024;

async function metrics(): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

async function idle(): Promise<string> {
  for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    const text = await metrics();
    if (metric(text, 'egret_active_generations') === 0 && metric(text, 'egret_queue_length') === 0) return text;
  }
  throw new Error('the server did not become idle');
}

/** One streaming request; `leave` ones stop reading (the client disconnects) after LEAVE_AFTER chunks. */
async function request(client: OpenAI, i: number, leave: boolean) {
  const params = { model: 'tiny-llama', messages: [{ role: 'user', content: `The cat ${i}` }], max_tokens: leave ? LEAVER_MAX_TOKENS : MAX_TOKENS, temperature: 0.8, seed: i, ignore_eos: true, stream: true, stream_options: { include_usage: true } };
  const stream = await client.chat.completions.create(params as ChatCompletionCreateParamsStreaming);
  let chunks = 0;
  let usage: OpenAI.CompletionUsage | null | undefined;
  let finish: string | null = null;
  for await (const c of stream) {
    if (leave && ++chunks === LEAVE_AFTER) break; // the openai client aborts its HTTP request here
    if (c.usage) usage = c.usage;
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  return { leave, usage, finish };
}

async function round(client: OpenAI) {
  return Promise.all(Array.from({ length: 32 }, (_, i) => request(client, i, i % 3 === 0)));
}

test('32 concurrent streams, a third disconnecting midway', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await Promise.all(Array.from({ length: 4 }, (_, i) => request(client, i, false))); // warm-up
  const warm = await idle();
  const started = metric(warm, 'process_resident_memory_bytes');
  const tokensBefore = metric(warm, 'egret_completion_tokens_total');

  // /metrics while the round runs: the batch never holds more than --concurrency (4) sequences.
  let widest = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      widest = Math.max(widest, metric(await metrics(), 'egret_batch_size'));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const results = await round(client);
  sampling = false;
  await sampler;
  const after1 = await idle();
  assert.ok(widest >= 1 && widest <= 4, `batch size seen: ${widest}`);
  assert.equal(metric(after1, 'egret_batch_size'), 0);
  // Sequences shared decode calls: more tokens were decoded than calls made.
  const steps = metric(after1, 'egret_decode_steps_total') - metric(warm, 'egret_decode_steps_total');
  const rows = metric(after1, 'egret_decode_rows_total') - metric(warm, 'egret_decode_rows_total');
  assert.ok(rows > steps, `${rows} tokens in ${steps} decode calls`);
  const completed = results.filter((r) => !r.leave);
  assert.equal(completed.length, 21);
  for (const r of completed) {
    assert.equal(r.finish, 'length');
    assert.equal(r.usage?.completion_tokens, MAX_TOKENS);
  }
  assert.equal(metric(after1, 'egret_cancelled_generations_total'), 11);
  assert.equal(metric(after1, 'egret_http_requests_total{path="/v1/chat/completions",status="disconnected"}'), 11);
  // The disconnected generations stopped soon after their clients left: a few tokens each beyond the 4 read
  // (7–17 on average here, under load), not the 1024 asked; the bound leaves room for a busy machine.
  const cancelledTokens = metric(after1, 'egret_completion_tokens_total') - tokensBefore - 21 * MAX_TOKENS;
  assert.ok(cancelledTokens < 11 * 64, `the 11 cancelled generations produced ${cancelledTokens} tokens`);

  // Memory: the first round sets the working set (KV caches, ORT's arenas, V8 heaps); more rounds must not grow it
  // by much.
  const baseline = metric(after1, 'process_resident_memory_bytes');
  for (let i = 0; i < 3; i++) await round(client);
  const rss = metric(await idle(), 'process_resident_memory_bytes');
  const MiB = 1024 * 1024;
  console.log(`server RSS: ${(started / MiB).toFixed(1)} MiB after warm-up, ${(baseline / MiB).toFixed(1)} MiB after one round of 32, ${(rss / MiB).toFixed(1)} MiB after three more; the 11 cancelled generations made ${cancelledTokens} tokens in all`);
  assert.ok(rss - baseline < 48 * MiB, `RSS grew by ${((rss - baseline) / MiB).toFixed(1)} MiB`);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
