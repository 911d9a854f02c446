// The web UI end to end: a headless Chromium from the npm registry (@sparticuz/chromium, unpacked into the temporary
// folder on first use) driven by playwright-core against a real egret serve process with tiny-llava15. Upload an
// image, ask, watch the answer stream in, turn VTW on; a screenshot is saved. Then, on a server with no --model
// (EGRET_MODEL naming tiny-llava-hr, as the shipped model would be): the page names the model loaded, lists the
// package's example images, and one clicked is attached to the question and answered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { launchChromium } from './helpers/chromium.js';
import { ROOT } from './helpers/cli.js';
import { dataUrl, startServer, startServerWith, type RunningServer } from './helpers/serve.js';

const MODEL = 'test/fixtures/tiny-llava15';
const IMAGE = 'test/fixtures/images/rgba.png';
let server: RunningServer;
let browser: BrowserContext;
let profile: string;

before(async () => {
  profile = await mkdtemp(join(tmpdir(), 'egret-chromium-'));
  server = await startServer(MODEL);
  browser = await launchChromium(profile, { width: 1100, height: 720 });
});

after(async () => {
  await browser?.close();
  assert.equal(await server?.stop(), 0, server?.log());
  await rm(profile, { recursive: true, force: true });
});

test('upload an image, ask, get a streamed answer with statistics; VTW withdraws the visual tokens', async () => {
  const page = await browser.newPage();
  const failures: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  await page.goto(server.url);
  await page.locator('#model', { hasText: 'tiny-llava15' }).waitFor();
  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', '400');
  await page.setInputFiles('#file', IMAGE);
  await page.locator('#drop-view img').waitFor();
  // Record the answer's texts as it streams. Several events read at once show as one text, so the answer is long
  // (400 tokens, a few hundred milliseconds of decoding) for the page to show it growing.
  await page.evaluate(`window.texts = new Set();
    new MutationObserver(() => { const t = document.querySelector('.message.assistant .text'); if (t && t.textContent) window.texts.add(t.textContent); })
      .observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });`);
  // The answer's events arrive spread over a second or more (20 kB/s down), so that the page shows it growing
  // however busy the machine: once, with the suite and two training jobs on 2 cores, all of it came in one read.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 20_000, uploadThroughput: -1 });
  await page.fill('#prompt', 'What is in the picture?');
  await page.click('#send');
  const first = page.locator('.message.assistant').nth(0);
  await first.locator('.stats').waitFor({ timeout: 30_000 });
  const answer = await first.locator('.text').textContent();
  const stats = await first.locator('.stats').textContent();
  assert.match(stats!, /[\d.]+ tokens\/s/);
  assert.match(stats!, /visual tokens kept 16 of 16/);
  const texts = (await page.evaluate('[...window.texts]')) as string[];
  assert.ok(texts.length >= 4 && texts.every((t) => answer!.startsWith(t)), `the answer grew in pieces: ${JSON.stringify(texts)}`);
  assert.ok(await page.locator('.message.user img').count() === 1, 'the question shows its image');

  // The page's answer is the API's answer to the same request.
  const api = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in the picture?' }, { type: 'image_url', image_url: { url: await dataUrl(IMAGE) } }] }], max_tokens: 400, temperature: 0 }),
  });
  assert.equal(answer, ((await api.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content);

  await page.check('#vtw');
  await page.fill('#vtw-layer', '1');
  await page.fill('#max-tokens', '16');
  await page.fill('#prompt', 'And without looking?');
  await page.press('#prompt', 'Enter');
  const second = page.locator('.message.assistant').nth(1);
  await second.locator('.stats').waitFor({ timeout: 30_000 });
  assert.match((await second.locator('.stats').textContent())!, /visual tokens kept 0 of 16 \(VTW before layer 1\)/);

  // The conversation so far, with and without VTW (the drop and paste checks below clear it).
  const dir = await mkdtemp(join(tmpdir(), 'egret-ui-'));
  const screenshot = join(dir, 'chat.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`web UI screenshot: ${screenshot}`);

  // Dropping and pasting attach an image too.
  const png = (await readFile(IMAGE)).toString('base64');
  for (const how of ['drop', 'paste']) {
    await page.click('#clear');
    assert.equal(await page.locator('#drop-view img').count(), 0);
    await page.evaluate(`(() => {
      const bytes = Uint8Array.from(atob('${png}'), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'rgba.png', { type: 'image/png' }));
      document.dispatchEvent('${how}' === 'drop' ? new DragEvent('drop', { dataTransfer: data, bubbles: true }) : new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
    })()`);
    await page.locator('#drop-view img').waitFor({ timeout: 5_000 });
  }
  assert.deepEqual(failures, []);
});

test('without --model: the model loaded is named, an example image is attached with a click and answered', async () => {
  const fixture = 'test/fixtures/tiny-llava-hr';
  const defaulted = await startServerWith([], { ...process.env, EGRET_MODEL: fixture });
  try {
    const page = await browser.newPage();
    const failures: string[] = [];
    page.on('pageerror', (err) => failures.push(err.message));
    await page.goto(defaulted.url);
    await page.locator('#model', { hasText: 'tiny-llava-hr' }).waitFor();
    const card = (await readFile(join(ROOT, fixture, 'README.md'), 'utf8')).split('\n')[0]!.replace(/^# /, '');
    await page.locator('#model-details', { hasText: `llava-hr · fp32 · ${card}` }).waitFor();

    // Every image of examples/ is offered, its thumbnail loaded from the server.
    const images = (await readdir(join(ROOT, 'examples'))).filter((name) => name.endsWith('.png')).sort();
    await page.locator('#examples button').nth(images.length - 1).waitFor();
    assert.deepEqual(await page.locator('#examples button').evaluateAll((buttons) => buttons.map((b) => b.title)), images);
    const ticket = page.locator('#examples button[title="ticket.png"]');
    const width = await ticket.locator('img').evaluate((element) => {
      const img = element as unknown as { decode(): Promise<void>; naturalWidth: number };
      return img.decode().then(() => img.naturalWidth);
    });
    assert.equal(width, 953);

    await ticket.click();
    await page.locator('#drop-view img[alt="ticket.png"]').waitFor({ timeout: 5_000 });
    await page.fill('#temperature', '0');
    await page.fill('#max-tokens', '12');
    await page.fill('#prompt', 'What is the code?');
    await page.click('#send');
    const answer = page.locator('.message.assistant').nth(0);
    await answer.locator('.stats').waitFor({ timeout: 30_000 });
    assert.match((await answer.locator('.stats').textContent())!, /visual tokens kept 16 of 16/);
    assert.equal(await page.locator('.message.user img').count(), 1);
    // The answer is the API's to the same question about examples/ticket.png: the example was sent as it is.
    const api = await fetch(`${defaulted.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is the code?' }, { type: 'image_url', image_url: { url: await dataUrl(join(ROOT, 'examples/ticket.png')) } }] }], max_tokens: 12, temperature: 0 }),
    });
    const expected = ((await api.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    assert.ok(expected.length > 0);
    assert.equal(await answer.locator('.text').textContent(), expected);
    assert.deepEqual(failures, []);
    const screenshot = join(await mkdtemp(join(tmpdir(), 'egret-ui-')), 'examples.png');
    await page.screenshot({ path: screenshot });
    console.log(`web UI screenshot: ${screenshot}`);
    await page.close();
  } finally {
    assert.equal(await defaulted.stop(), 0, defaulted.log());
  }
});
