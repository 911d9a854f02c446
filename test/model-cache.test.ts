// The optimised-model cache as users meet it: on by default in their cache folder, keyed by the checkpoint's
// files, egret's version and the graph, off with --no-cache, and never a failure when the folder cannot be written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKey, loadModel } from '../src/models/index.js';
import { defaultCacheDir } from '../src/runtime/cache-dir.js';
import { ROOT } from './helpers/cli.js';

const FIXTURE = 'test/fixtures/tiny-llama';
const GENERATE = ['generate', '--prompt', 'The cat is black.', '--max-new-tokens', '6', '--ignore-eos', '--json', '--threads', '1'];

/** `bin/egret` with the environment's cache variables replaced by `env` (undefined: unset). */
function egretWith(env: Record<string, string | undefined>, ...args: string[]) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['EGRET_CACHE_DIR', 'XDG_CACHE_HOME', 'HOME']) delete childEnv[name];
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  const r = spawnSync(process.execPath, ['bin/egret', ...args], { cwd: ROOT, encoding: 'utf8', env: childEnv });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'egret-cache-test-'));
  try {
    await fn(dir);
  } finally {
    await chmod(dir, 0o755).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** A copy of the tiny model that a test may change. */
async function modelCopy(dir: string): Promise<string> {
  const model = join(dir, 'model');
  await cp(FIXTURE, model, { recursive: true });
  return model;
}

const entries = async (dir: string) => (await readdir(dir).catch(() => [])).filter((n) => !n.includes('.tmp-'));

test('the default cache folder: $EGRET_CACHE_DIR, else $XDG_CACHE_HOME/egret, else ~/.cache/egret', () => {
  assert.equal(defaultCacheDir({ EGRET_CACHE_DIR: '/c/egret', XDG_CACHE_HOME: '/x' }, '/home/u'), '/c/egret');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u'), '/x/egret');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: 'relative/path' }, '/home/u'), '/home/u/.cache/egret', 'a relative XDG_CACHE_HOME is ignored');
  assert.equal(defaultCacheDir({}, '/home/u'), '/home/u/.cache/egret');
});

test('egret generate caches by default in the user cache folder, reuses it, and --no-cache writes nothing', async () => {
  await withTemp(async (dir) => {
    const home = join(dir, 'home');
    const first = egretWith({ HOME: home }, ...GENERATE, '--model', FIXTURE);
    assert.equal(first.code, 0, first.stderr);
    const cache = join(home, '.cache', 'egret');
    const made = await entries(cache);
    assert.equal(made.length, 1, `one cached model under ~/.cache/egret: ${made}`);
    const second = egretWith({ HOME: home }, ...GENERATE, '--model', FIXTURE);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(JSON.parse(second.stdout).ids, JSON.parse(first.stdout).ids);
    assert.deepEqual(await entries(cache), made, 'the second run used the cached model');

    const xdg = join(dir, 'xdg');
    assert.equal(egretWith({ HOME: home, XDG_CACHE_HOME: xdg }, ...GENERATE, '--model', FIXTURE).code, 0);
    assert.equal((await entries(join(xdg, 'egret'))).length, 1, '$XDG_CACHE_HOME/egret');
    const own = join(dir, 'own');
    assert.equal(egretWith({ HOME: home, XDG_CACHE_HOME: xdg, EGRET_CACHE_DIR: own }, ...GENERATE, '--model', FIXTURE).code, 0);
    assert.equal((await entries(own)).length, 1, '$EGRET_CACHE_DIR first');

    const off = join(dir, 'off');
    const uncached = egretWith({ HOME: off }, ...GENERATE, '--model', FIXTURE, '--no-cache');
    assert.equal(uncached.code, 0, uncached.stderr);
    assert.deepEqual(JSON.parse(uncached.stdout).ids, JSON.parse(first.stdout).ids);
    // (onnxruntime itself keeps a device id under ~/.cache/Microsoft: not egret's to change.)
    assert.deepEqual(await readdir(join(off, '.cache', 'egret')).catch(() => []), [], '--no-cache: nothing written');
  });
});

test('the cache key: a changed checkpoint file or another egret version misses, the same files hit', async () => {
  await withTemp(async (dir) => {
    const model = await modelCopy(dir);
    const cacheDir = join(dir, 'cache');
    const load = async () => {
      const m = await loadModel(model, { dtype: 'fp32', threads: 1, cacheDir });
      const origin = m.lm.decoder.session.origin;
      const logits = (await m.decoder.forward(m.decoder.newCache(1), { embeds: m.embed([1, 5, 9]), seq: 3, counts: [3], positions: [[0, 1, 2]], logitRows: [[2]] })).logits;
      await m.dispose();
      return { origin, logits };
    };
    const built = await load();
    assert.equal(built.origin, 'file');
    const hit = await load();
    assert.equal(hit.origin, 'cache');
    assert.deepEqual(hit.logits, built.logits, 'the cached model computes the same logits');
    assert.equal((await entries(cacheDir)).length, 1);

    // The weights file rewritten (same bytes, new modification time): egret cannot know it is unchanged.
    const later = new Date(Date.now() + 60_000);
    await utimes(join(model, 'model.safetensors'), later, later);
    assert.equal((await load()).origin, 'file', 'a changed checkpoint file misses');
    assert.equal((await entries(cacheDir)).length, 2);
    assert.equal((await load()).origin, 'cache');

    await writeFile(join(model, 'generation_config.json'), '{"do_sample": false}\n');
    assert.notEqual(await cacheKey(model, { dtype: 'fp32' }), await cacheKey(model, { dtype: 'fp32' }, '0.0.0-other'), 'another egret version is another key');
    assert.notEqual(await cacheKey(model, { dtype: 'fp32' }), await cacheKey(model, { dtype: 'q4' }), 'another dtype is another key');
    assert.equal((await load()).origin, 'file', 'a changed file beside the weights misses too');
  });
});

test('a cache folder that cannot be written: one warning, the same answer, exit 0', async () => {
  await withTemp(async (dir) => {
    // A regular file where the folder should be: nothing can be created under it, whoever runs the test.
    const notAFolder = join(dir, 'cache-file');
    await writeFile(notAFolder, 'not a folder\n');
    const reference = egretWith({ HOME: join(dir, 'home') }, ...GENERATE, '--model', FIXTURE, '--no-cache');
    assert.equal(reference.code, 0, reference.stderr);
    const r = egretWith({ EGRET_CACHE_DIR: notAFolder }, ...GENERATE, '--model', FIXTURE);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).ids, JSON.parse(reference.stdout).ids);
    const warnings = r.stderr.split('\n').filter((line) => line.startsWith('warning: '));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /cache-file cannot be written \(ENOTDIR\); running without it/);
    assert.equal(r.stderr.trim(), warnings[0], 'nothing else on stderr');

    // In process: the load goes on and says why once.
    const said: string[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await loadModel(FIXTURE, { threads: 1, cacheDir: join(notAFolder, 'sub'), warn: (message) => said.push(message) });
      assert.notEqual(m.lm.decoder.session.origin, 'cache');
      await m.dispose();
    }
    assert.equal(said.length, 1, `one warning, however many loads: ${said}`);
  });
});

test('a read-only cache folder degrades to no cache with one warning', { skip: process.getuid?.() === 0 ? 'root writes into read-only folders' : false }, async () => {
  await withTemp(async (dir) => {
    const readOnly = join(dir, 'ro');
    await mkdir(readOnly);
    await chmod(readOnly, 0o555);
    const r = egretWith({ EGRET_CACHE_DIR: readOnly }, ...GENERATE, '--model', FIXTURE);
    await chmod(readOnly, 0o755);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((line) => line.startsWith('warning: ')).length, 1, r.stderr);
    assert.deepEqual(await readdir(readOnly), []);
  });
});
