// egret serve through the official `openai` npm client, unchanged: text with tiny-llama, images with tiny-llava15.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { dataUrl, metric, sseData, startServer, type RunningServer } from './helpers/serve.js';

let text: RunningServer;
let vision: RunningServer;
let hr: RunningServer;

before(async () => {
  [text, vision, hr] = await Promise.all([startServer('test/fixtures/tiny-llama'), startServer('test/fixtures/tiny-llava15'), startServer('test/fixtures/tiny-llava-hr')]);
});

after(async () => {
  assert.equal(await text?.stop(), 0, text?.log());
  assert.equal(await vision?.stop(), 0, vision?.log());
  assert.equal(await hr?.stop(), 0, hr?.log());
  assert.doesNotMatch(text.log() + vision.log() + hr.log(), /internal failure/);
});

const client = (server: RunningServer) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });

test('non-streaming: the greedy answer is the one `egret generate` gives, with usage and statistics', async () => {
  const cli = spawnSync(process.execPath, ['bin/egret', 'generate', '--model', 'test/fixtures/tiny-llama', '--prompt', 'The cat is black.', '--max-new-tokens', '12', '--ignore-eos', '--json'], { encoding: 'utf8' });
  const expected = JSON.parse(cli.stdout);
  const params = { model: 'tiny-llama', messages: [{ role: 'user', content: 'The cat is black.' }], max_tokens: 12, temperature: 0, ignore_eos: true };
  const r = await client(text).chat.completions.create(params as ChatCompletionCreateParamsNonStreaming);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.equal(r.choices[0]!.message.content, expected.text);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.deepEqual(r.usage, { prompt_tokens: expected.stats.prompt_tokens, completion_tokens: 12, total_tokens: expected.stats.prompt_tokens + 12 });
  const stats = (r as unknown as { egret: Record<string, number> }).egret;
  assert.equal(stats['flops'], expected.stats.flops);
  assert.equal(stats['visual_tokens'], 0);
});

test('streaming: the chunks add up to the non-streaming answer; include_usage ends with a usage chunk', async () => {
  const messages = [{ role: 'system' as const, content: 'Answer briefly.' }, { role: 'user' as const, content: 'The cat' }];
  const whole = await client(text).chat.completions.create({ model: 'tiny-llama', messages, max_tokens: 20, temperature: 0.7, seed: 5 });
  const stream = await client(text).chat.completions.create({ model: 'tiny-llama', messages, max_tokens: 20, temperature: 0.7, seed: 5, stream: true, stream_options: { include_usage: true } });
  let content = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined | null;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    assert.equal(c.object, 'chat.completion.chunk');
    if (c.choices.length > 0) {
      content += c.choices[0]!.delta.content ?? '';
      finish = c.choices[0]!.finish_reason ?? finish;
    } else usage = c.usage;
  }
  assert.ok(chunks > 3);
  assert.equal(content, whole.choices[0]!.message.content);
  assert.equal(finish, whole.choices[0]!.finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('an image: non-streaming and streaming; the visual tokens count in usage, and VTW withdraws them', async () => {
  const image = await dataUrl('test/fixtures/images/rgba.png');
  const messages = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'What is in the picture?' }, { type: 'image_url' as const, image_url: { url: image } }] }];
  const api = client(vision);
  const r = await api.chat.completions.create({ model: 'tiny-llava15', messages, max_tokens: 8, temperature: 0 });
  const stats = (r as unknown as { egret: Record<string, number | null> }).egret;
  assert.equal(stats['visual_tokens'], 16);
  assert.equal(stats['visual_tokens_kept'], 16);
  // The same question through the CLI: the same prompt (vicuna_v1, image first), the same greedy answer.
  const cli = spawnSync(process.execPath, ['bin/egret', 'generate', '--model', 'test/fixtures/tiny-llava15', '--prompt', 'What is in the picture?', '--image', 'test/fixtures/images/rgba.png', '--max-new-tokens', '8', '--json'], { encoding: 'utf8' });
  const expected = JSON.parse(cli.stdout);
  assert.equal(r.usage!.prompt_tokens, expected.stats.prompt_tokens);
  assert.equal(r.choices[0]!.message.content, expected.text);
  const stream = await api.chat.completions.create({ model: 'tiny-llava15', messages, max_tokens: 8, temperature: 0, stream: true });
  let content = '';
  for await (const c of stream) content += c.choices[0]?.delta.content ?? '';
  assert.equal(content, r.choices[0]!.message.content);
  const withdrawn = await api.chat.completions.create({ model: 'tiny-llava15', messages, max_tokens: 8, temperature: 0, egret: { vtw: { layer: 1 } } } as ChatCompletionCreateParamsNonStreaming);
  const vtw = (withdrawn as unknown as { egret: Record<string, number | null> }).egret;
  assert.equal(vtw['vtw_layer'], 1);
  assert.equal(vtw['visual_tokens_kept'], 0);
  assert.ok(vtw['flops']! < stats['flops']!, `VTW ${vtw['flops']} FLOPs vs ${stats['flops']}`);
});

test('models, health and metrics', async () => {
  const models = await client(text).models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['tiny-llama']);
  const health = (await (await fetch(`${text.url}/health`)).json()) as { status: string };
  assert.equal(health.status, 'ok');
  const res = await fetch(`${text.url}/metrics`);
  assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  const body = await res.text();
  assert.ok(metric(body, 'egret_http_requests_total{path="/v1/chat/completions",status="200"}') >= 3);
  assert.ok(metric(body, 'egret_completion_tokens_total') >= 12 + 20 + 20);
  assert.equal(metric(body, 'egret_queue_length'), 0);
  assert.ok(metric(body, 'egret_request_duration_seconds_count') >= 3);
  assert.ok(metric(body, 'process_resident_memory_bytes') > 0);
});

test("/v1/models describes the model (family, dtype, its card's first line); /examples lists and serves the example images", async () => {
  const [model] = (await client(hr).models.list()).data as unknown as { id: string; egret: unknown }[];
  const card = (await readFile('test/fixtures/tiny-llava-hr/README.md', 'utf8')).split('\n')[0]!.replace(/^# /, '');
  assert.deepEqual([model!.id, model!.egret], ['tiny-llava-hr', { family: 'llava-hr', dtype: 'fp32', card }]);
  const files = (await readdir('examples')).filter((name) => name.endsWith('.png')).sort();
  assert.ok(files.includes('ticket.png'));
  const examples = (await (await fetch(`${text.url}/examples`)).json()) as { data: { name: string; url: string }[] };
  assert.deepEqual(examples.data, files.map((name) => ({ name, url: `/examples/${name}` })));
  const image = await fetch(`${text.url}/examples/ticket.png`);
  assert.equal(image.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await image.arrayBuffer()), await readFile('examples/ticket.png'));
  // Only the listed images: no other name, no path out of the folder.
  for (const path of ['README.md', 'missing.png', '..%2Fpackage.json', '%2E%2E/package.json', '%E0']) assert.equal((await fetch(`${text.url}/examples/${path}`)).status, 404, path);
  assert.equal((await fetch(`${text.url}/examples/ticket.png`, { method: 'POST' })).status, 405);
});

test('curl, as the OpenAI docs use it: a streamed answer ending with [DONE]', { skip: !existsSync('/usr/bin/curl') && 'no curl here' }, () => {
  const body = JSON.stringify({ model: 'tiny-llama', messages: [{ role: 'user', content: 'The cat' }], max_tokens: 6, stream: true });
  const r = spawnSync('curl', ['-sS', '-N', `${text.url}/v1/chat/completions`, '-H', 'Content-Type: application/json', '-H', 'Authorization: Bearer unused', '-d', body], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const events = sseData(r.stdout);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.ok(['stop', 'length'].includes(chunks.at(-1).choices[0].finish_reason));
});

test('LLaVA-HR serves images the same way, with the answer `egret generate` gives', async () => {
  const image = 'test/fixtures/tiny-llava-hr/images/wide.png';
  const r = await client(hr).chat.completions.create({
    model: 'tiny-llava-hr',
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: await dataUrl(image) } }, { type: 'text', text: 'Describe it.' }] }],
    max_tokens: 6,
    temperature: 0,
  });
  const cli = spawnSync(process.execPath, ['bin/egret', 'generate', '--model', 'test/fixtures/tiny-llava-hr', '--prompt', 'Describe it.', '--image', image, '--max-new-tokens', '6', '--json'], { encoding: 'utf8' });
  const expected = JSON.parse(cli.stdout);
  assert.equal(r.choices[0]!.message.content, expected.text);
  assert.equal(r.usage!.prompt_tokens, expected.stats.prompt_tokens);
  assert.equal((r as unknown as { egret: { visual_tokens: number } }).egret.visual_tokens, expected.stats.visual_tokens);
});
