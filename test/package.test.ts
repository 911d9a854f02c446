// egret installed as a user installs it: `npm pack`, then `npm install ./egret-vl-*.tgz` in an empty folder with
// this npm and with npm 10, with ONNXRUNTIME_NODE_INSTALL=skip as the README tells users (onnxruntime-node's
// postinstall would otherwise fetch CUDA files from outside the npm registry, and fail the install without network).
// Then `npx egret --help`, the example images (and the shipped model where the checkout has it), a generate on
// tiny-llama (the same answer as from this checkout), a small-print image (the same pixels: the font ships) and
// `npx egret bench`.
// Packages come from npm's cache when they are there, else from the npm registry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { egretSync, ROOT } from './helpers/cli.js';

const run = promisify(execFile);
const npmEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
let work: string;
let tarball: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'egret-package-'));
  // dist/ is built (npm test compiles first): pack it without running the prepare script again.
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, env: npmEnv });
  tarball = join(work, (await readdir(work)).find((name) => /^egret-vl-.*\.tgz$/.test(name))!);
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

const MODEL = join(ROOT, 'test/fixtures/tiny-llama');

for (const [label, npm] of [['this npm', ['npm']], ['npm 10', ['npx', '-y', 'npm@10']]] as const) {
  test(`installed with ${label}: npx egret --help, generate and bench work`, { timeout: 600_000 }, async () => {
    const folder = await mkdtemp(join(work, 'user-'));
    const [command, ...args] = npm;
    await run(command, [...args, 'install', tarball, '--prefer-offline'], { cwd: folder, env: npmEnv, maxBuffer: 1 << 24 });
    if (label === 'npm 10') assert.match((await run(command, [...args, '--version'], { cwd: folder, env: npmEnv })).stdout, /^10\./);
    const egret = (...a: string[]) => run('npx', ['--no-install', 'egret', ...a], { cwd: folder, env: npmEnv, maxBuffer: 1 << 24 });
    assert.match((await egret('--help')).stdout, /^usage: egret <command>/);
    // The example images ship (the web UI offers them), and so does the default model when the checkout has it.
    assert.deepEqual(await readFile(join(folder, 'node_modules/egret-vl/examples/ticket.png')), await readFile(join(ROOT, 'examples/ticket.png')));
    assert.equal(existsSync(join(folder, 'node_modules/egret-vl/models/lab-mra')), existsSync(join(ROOT, 'models/lab-mra')));
    const generated = JSON.parse((await egret('generate', '--model', MODEL, '--ids', '1,2,3', '--max-new-tokens', '4', '--json')).stdout);
    const local = egretSync('generate', '--model', MODEL, '--ids', '1,2,3', '--max-new-tokens', '4', '--json');
    assert.deepEqual(generated.ids, JSON.parse(local.stdout).ids);
    // The shipped font and fontconfig file: the installed package draws the same small-print image as this checkout.
    await egret('lab', 'generate', '--task', 'smallprint', '--count', '1', '--out', join(folder, 'lab'));
    const localLab = await mkdtemp(join(work, 'lab-'));
    assert.equal(egretSync('lab', 'generate', '--task', 'smallprint', '--count', '1', '--out', join(localLab, 'out')).code, 0);
    assert.deepEqual(await readFile(join(folder, 'lab', 'images', '000000.png')), await readFile(join(localLab, 'out', 'images', '000000.png')));
    assert.match((await egret('bench', '--list')).stdout, /matmul/);
    const bench = JSON.parse((await egret('bench', 'matmul', '--shapes=16x16x16', '--reps', '1', '--warmup', '1', '--trials=1', '--json')).stdout);
    assert.equal(bench.results[0].suite, 'matmul');
    assert.equal(bench.results[0].error, undefined);
  });
}
