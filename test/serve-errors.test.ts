// Bad requests to a real egret serve process: each class gets its 4xx in OpenAI's error shape, remote image URLs
// cause no connection, a full queue answers 429, and the server stays up throughout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { crc32 } from 'node:zlib';
import { metric, startServer, type RunningServer } from './helpers/serve.js';

const MODEL = 'test/fixtures/tiny-llama';
let server: RunningServer;

before(async () => {
  server = await startServer(MODEL, '--concurrency', '1', '--max-queue', '1');
});

after(async () => {
  assert.equal(await server?.stop(), 0, server?.log());
  assert.doesNotMatch(server.log(), /internal failure/);
});

async function post(body: unknown, path = '/v1/chat/completions', method = 'POST') {
  const res = await fetch(`${server.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as { error: { message: string; type: string; param: string | null; code: string | null } } };
}

async function assertError(body: unknown, status: number, pattern: RegExp) {
  const r = await post(body);
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(typeof r.body.error.type, 'string');
  assert.match(r.body.error.message, pattern);
  return r;
}

const chat = (content: unknown, extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content }], max_tokens: 4, ...extra });
const png = (bytes: Uint8Array) => ({ type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from(bytes).toString('base64')}` } });

/** A PNG that is only a header declaring width x height: a decompression bomb's signature. */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', ihdr), chunk('IDAT', Buffer.alloc(0)), chunk('IEND', Buffer.alloc(0))]);
}

test('invalid JSON and a body that is not an object', async () => {
  await assertError('{"messages": [', 400, /not valid JSON/);
  await assertError('[1, 2]', 400, /must be a JSON object/);
  await assertError('', 400, /not valid JSON/);
});

test('wrong types and values name the field', async () => {
  assert.equal((await assertError({ messages: 'hi' }, 400, /messages: must be a non-empty array/)).body.error.param, 'messages');
  await assertError({ messages: [] }, 400, /non-empty array/);
  await assertError(chat(42), 400, /messages\[0\]\.content: must be a string or an array/);
  await assertError(chat([{ type: 'text', text: 5 }]), 400, /messages\[0\]\.content\[0\]\.text: must be a string/);
  await assertError(chat([{ type: 'input_audio' }]), 400, /unsupported content part type/);
  await assertError(chat('hi', { temperature: 'hot' }), 400, /temperature: must be a number in \[0, 2\]/);
  await assertError(chat('hi', { max_tokens: 0 }), 400, /max_tokens: must be a positive integer/);
  await assertError(chat('hi', { stream: 'yes' }), 400, /stream: must be a boolean/);
  await assertError(chat('hi', { stop: ['a', 'b', 'c', 'd', 'e'] }), 400, /stop:/);
  await assertError(chat('hi', { n: 2 }), 400, /n: more than one choice is not supported/);
  await assertError(chat('hi', { egret: { vtw: { layer: 0 } } }), 400, /egret\.vtw: .*layer|layer: must be a positive integer/);
  await assertError({ messages: [{ role: 'assistant', content: [png(pngHeader(1, 1))] }, { role: 'user', content: 'hi' }] }, 400, /images are accepted in user messages only/);
  await assertError({ messages: [{ role: 'assistant', content: 'hello' }] }, 400, /chat turn 0 is from 'assistant'/);
  await assertError(chat([{ type: 'text', text: 'look: <image>' }]), 400, /content\[0\]\.text: text may not contain '<image>'/);
});

test('unknown roles', async () => {
  await assertError({ messages: [{ role: 'tool', content: 'x' }] }, 400, /unknown or unsupported role "tool"/);
  await assertError({ messages: [{ content: 'x' }] }, 400, /unknown or unsupported role undefined/);
});

test('images: too many, too large in bytes, too large in pixels, undecodable, and a text-only model', async () => {
  const tiny = png(pngHeader(1, 1));
  await assertError(chat([{ type: 'text', text: 'hi' }, tiny, tiny, tiny, tiny, tiny]), 400, /too many images: at most 4/);
  const big = new Uint8Array(16 * 1024 * 1024 + 3);
  big.set(pngHeader(1, 1));
  await assertError(chat([png(big)]), 400, /image 1: 16777219 bytes, above the image size limit of 16777216 bytes/);
  await assertError(chat([png(pngHeader(20_000, 20_000))]), 400, /image 1: image is 20000x20000 = 400000000 pixels, above the limit/);
  await assertError(chat([png(Buffer.from('\x89PNG\r\n\x1a\n this is not a PNG at all', 'latin1'))]), 400, /image 1: cannot decode image/);
  await assertError(chat([{ type: 'image_url', image_url: { url: 'data:image/png;base64,@@@' } }]), 400, /not valid base64/);
  await assertError(chat([{ type: 'image_url', image_url: { url: 'data:text/plain,hello' } }]), 400, /must be base64-encoded/);
  const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
  await assertError(chat([{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: `data:image/gif;base64,${gif.toString('base64')}` } }]), 400, /text-only model: it takes no images/);
});

test('a prompt longer than the context: 400 with the counts', async () => {
  await assertError(chat('hello world '.repeat(1500)), 400, /prompt has \d{4,} tokens \(visual tokens included\), more than the context of 2048/);
});

test('a body over the limit: 413, without reading it', async () => {
  // 100 MB declared; the server answers from the headers and closes the connection.
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(100_000_000) } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
      req.destroy();
    });
    req.on('error', reject);
    req.write('{"messages": "');
  });
  assert.equal(status, 413);
  // Chunked, with no declared length (120 MiB in 4 MiB pieces): refused once the limit is passed.
  let pieces = 0;
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    body: new ReadableStream({
      pull(controller) {
        if (pieces++ < 30) controller.enqueue(new Uint8Array(4 * 1024 * 1024).fill(32));
        else controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit).catch((err: Error) => err);
  if (r instanceof Response) {
    assert.equal(r.status, 413);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /above the limit/);
  } else {
    assert.match(String(r.cause ?? r), /closed|reset|EPIPE|terminated/i, 'the server may close the connection while the client is still sending');
  }
});

test('bodies in flight are bounded: a body that does not fit is refused (503) until others leave', async () => {
  // This server (--concurrency 1 --max-queue 1) holds two bodies of the largest size at once. Two clients declare
  // 80 MB and send nothing yet; a third declaring as much is refused at once.
  const hold = () => {
    const req = httpRequest(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-length': '80000000' } });
    req.on('error', () => {});
    req.write('{');
    return req;
  };
  const holders = [hold(), hold()];
  await new Promise((resolve) => setTimeout(resolve, 200));
  const refused = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve, reject) => {
    const req = httpRequest(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-length': '80000000' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }));
    });
    req.on('error', reject);
    req.write('{');
  });
  assert.equal(refused.status, 503);
  assert.equal(refused.retryAfter, '1');
  assert.match(JSON.parse(refused.body).error.message, /too much data at once/);
  for (const req of holders) req.destroy();
  // Their bytes are given back when they leave.
  await waitFor(async () => (await post(chat('The cat'))).status === 200);
});

test('unknown routes and methods; a request target that is not a URL', async () => {
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => socket.write('GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 404/);
  assert.equal((await post({}, '/v1/completions')).status, 404);
  const r = await post({}, '/v1/chat/completions', 'PUT');
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'POST');
});

/** A loopback listener that counts the connections it gets. */
async function trap(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const listener: Server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as { port: number }).port;
  return { port, connections: () => count, close: () => new Promise((resolve) => listener.close(() => resolve())) };
}

test('remote image URLs are refused without a connection; --allow-remote-images never reaches loopback', async () => {
  const t = await trap();
  const permissive = await startServer(MODEL, '--allow-remote-images');
  try {
    const image = (url: string) => chat([{ type: 'image_url', image_url: { url } }]);
    await assertError(image(`http://127.0.0.1:${t.port}/x.png`), 400, /remote image URLs are refused .*--allow-remote-images/);
    await assertError(image(`https://127.0.0.1:${t.port}/x.png`), 400, /remote image URLs are refused/);
    await assertError(image('file:///etc/passwd'), 400, /'file:' URLs are not accepted/);
    await assertError(image('/etc/passwd'), 400, /not accepted; send the image as a data: URL/);
    const viaPermissive = async (url: string, pattern: RegExp) => {
      const res = await fetch(`${permissive.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(image(url)) });
      assert.equal(res.status, 400, url);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, pattern);
    };
    await viaPermissive(`http://127.0.0.1:${t.port}/x.png`, /127\.0\.0\.1 is a loopback, private or reserved address/);
    await viaPermissive(`http://0x7f000001:${t.port}/x.png`, /127\.0\.0\.1 is a loopback/);
    await viaPermissive(`http://[::ffff:127.0.0.1]:${t.port}/x.png`, /loopback, private or reserved/);
    await viaPermissive(`http://localhost:${t.port}/x.png`, /localhost resolves to .*loopback, private or reserved/);
    await viaPermissive('file:///etc/passwd', /'file:' URLs are not accepted/);
    assert.equal(t.connections(), 0, 'no connection reached the listener');
  } finally {
    await permissive.stop();
    await t.close();
  }
});

test('a full queue answers 429 with Retry-After; the server keeps serving after its clients leave', async () => {
  // --concurrency 1 --max-queue 1: one long generation runs, one waits, the third is refused.
  const long = () => {
    const controller = new AbortController();
    const response = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chat('The cat', { max_tokens: 2000, ignore_eos: true, stream: true })), signal: controller.signal });
    return { controller, response };
  };
  const running = long();
  const first = await running.response;
  assert.equal(first.status, 200);
  const waiting = long();
  await waitFor(async () => ((await (await fetch(`${server.url}/health`)).json()) as { queued: number }).queued === 1);
  const refused = await assertError(chat('hi'), 429, /busy/);
  assert.equal(refused.headers.get('retry-after'), '1');
  running.controller.abort();
  waiting.controller.abort();
  await Promise.allSettled([first.body?.cancel(), waiting.response]);
  await waitFor(async () => {
    const h = (await (await fetch(`${server.url}/health`)).json()) as { active: number; queued: number };
    return h.active === 0 && h.queued === 0;
  });
  const ok = await post(chat('The cat'));
  assert.equal(ok.status, 200);
});

test('a non-streaming client that leaves cancels its generation', async () => {
  const metricsText = async () => (await fetch(`${server.url}/metrics`)).text();
  const before = await metricsText();
  const leaving = new AbortController();
  const gone = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chat('The cat', { max_tokens: 2000, ignore_eos: true })), signal: leaving.signal }).catch((err: Error) => err);
  await waitFor(async () => ((await (await fetch(`${server.url}/health`)).json()) as { active: number }).active === 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  leaving.abort();
  assert.ok((await gone) instanceof Error);
  const cancelled = 'egret_cancelled_generations_total';
  await waitFor(async () => metric(await metricsText(), cancelled) === metric(before, cancelled) + 1);
  const tokens = metric(await metricsText(), 'egret_completion_tokens_total') - metric(before, 'egret_completion_tokens_total');
  assert.ok(tokens < 2000, `it stopped after ${tokens} of 2000 tokens`);
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting for the server');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
