// Web pages of other sites cannot drive a local egret serve through the user's browser (review finding): a
// cross-origin request and, on loopback, a non-loopback Host (DNS rebinding) get 403; clients that send no
// Origin (curl, the openai package) and the server's own page are answered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, type RunningServer } from './helpers/serve.js';

let server: RunningServer;

before(async () => {
  server = await startServer('test/fixtures/tiny-llama');
});

after(async () => {
  assert.equal(await server?.stop(), 0, server?.log());
});

/** A raw request, so that Host and Origin are exactly what the test says (fetch would set Host itself). */
function raw(path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: body ? 'POST' : 'GET', headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('cross-origin pages and rebound host names are refused; plain clients and the own page are answered', async () => {
  const host = new URL(server.url).host;
  const chat = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  const json = { 'content-type': 'application/json' };
  assert.equal((await raw('/health', { host })).status, 200);
  assert.equal((await raw('/v1/chat/completions', { host, ...json }, chat)).status, 200);
  assert.equal((await raw('/v1/chat/completions', { host, origin: `http://${host}`, ...json }, chat)).status, 200, 'the server\'s own page');
  assert.equal((await raw('/health', { host: `localhost:${new URL(server.url).port}` })).status, 200);
  const foreign = await raw('/v1/chat/completions', { host, origin: 'http://evil.example', 'content-type': 'text/plain' }, chat);
  assert.equal(foreign.status, 403);
  assert.match(JSON.parse(foreign.text).error.message, /cross-origin request from http:\/\/evil\.example refused/);
  const rebound = await raw('/v1/chat/completions', { host: 'evil.example:8080', origin: 'http://evil.example:8080', ...json }, chat);
  assert.equal(rebound.status, 403);
  assert.match(JSON.parse(rebound.text).error.message, /not a loopback name/);
  assert.equal((await raw('/v1/models', { host, origin: 'null' })).status, 403);
});

test('a server on another loopback address (--host 127.0.0.2) answers its own Host names', async () => {
  const other = await startServer('test/fixtures/tiny-llama', '--host', '127.0.0.2');
  try {
    assert.equal(other.url, `http://127.0.0.2:${other.port}`);
    const health = await fetch(`${other.url}/health`);
    assert.equal(health.status, 200, await health.text());
    const page = await fetch(`${other.url}/`);
    assert.equal(page.status, 200);
    const chat = await fetch(`${other.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { origin: other.url, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    assert.equal(chat.status, 200, await chat.text());
  } finally {
    assert.equal(await other.stop(), 0, other.log());
  }
});
