// egret train lavin (issue #11): the trace of four steps against tiny-lavin's training reference (losses, first-step
// gradients, parameters after one AdamW step), a run from fresh adapters that lowers its loss, a checkpoint that holds
// the trained adapters and loads for inference, resuming, SIGKILL during saves, and the bad inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint, openCheckpointFile, type TensorSource } from '../src/io/checkpoint.js';
import { ROOT, assertInputError, egret } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/compare.js';
import { tinyScienceQa } from './helpers/lavin.js';

const DIR = join(ROOT, 'test/fixtures/tiny-lavin');
const MODEL = ['--model', join(DIR, 'llama'), '--clip', join(DIR, 'clip/ViT-tiny.pt')];
const ADAPTER = join(DIR, 'lavin/checkpoint-19.pth');


const EXACT = ['--batch-size', '2', '--accum-iter', '1', '--no-shuffle', '--dropout', '0', '--lr', '1e-3', '--schedule', 'constant', '--threads', '1'];

async function withFiles<T>(paths: string[], run: (sources: TensorSource[]) => Promise<T>): Promise<T> {
  const sources = await Promise.all(paths.map((p) => openCheckpoint(p)));
  try {
    return await run(sources);
  } finally {
    await Promise.all(sources.map((s) => s.close()));
  }
}

test('egret train lavin --trace: four losses, first-step gradients and AdamW step 1 match the training reference', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-train-trace-'));
  try {
    const data = tinyScienceQa(dir, ['a0', 'a2']);
    const trace = join(dir, 'trace.safetensors');
    const run = await egret('train', 'lavin', ...MODEL, '--adapter', ADAPTER, '--data', data, '--out', join(dir, 'run'), ...EXACT, '--max-steps', '4', '--trace', trace);
    assert.equal(run.code, 0, run.stderr);
    await withFiles([trace, join(DIR, 'expected_train.safetensors')], async ([got, ref]) => {
      assert.ok(maxAbsDiff(await got!.readFloat32('losses'), await ref!.readFloat32('losses')) <= 1e-4, 'losses');
      const grads = ref!.list().filter((t) => t.name.startsWith('grad.'));
      assert.equal(grads.length, 4 * 8 + 24 * 8 + 5, 'every adapter tensor: LLaMA and CLIP blocks, projector, modality embedding');
      assert.deepEqual(got!.list().filter((t) => t.name.startsWith('grad.')).map((t) => t.name).sort(), grads.map((t) => t.name).sort());
      for (const { name } of grads) {
        const want = await ref!.readFloat32(name);
        const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        assert.ok(maxAbsDiff(await got!.readFloat32(name), want) <= 1e-3 * scale + 1e-7, name);
        // The fixture README's tolerance for Adam's first step: 2e-3 where the gradient is below 1e-6, 2e-6 elsewhere.
        const param = `param_step1.${name.slice('grad.'.length)}`;
        const [p, q] = [await got!.readFloat32(param), await ref!.readFloat32(param)];
        p.forEach((x, i) => assert.ok(Math.abs(x - q[i]!) <= (Math.abs(want[i]!) < 1e-6 ? 2e-3 : 2e-6), `${param}[${i}]`));
      }
    });
    // The run folder: a checkpoint, the loss table (a row per update) and its chart.
    // The checkpoint after the first update holds exactly the adapters the trace saw (names with 'module.').
    await withFiles([trace, join(dir, 'run/checkpoint-0.pth')], async ([got, checkpoint]) => {
      for (const { name } of got!.list().filter((t) => t.name.startsWith('param_step1.'))) {
        assert.deepEqual(await checkpoint!.readFloat32(`model.module.${name.slice('param_step1.'.length)}`), await got!.readFloat32(name), name);
      }
    });
    // Each update ends an epoch here (one batch of two problems): a checkpoint each.
    assert.deepEqual(readdirSync(join(dir, 'run')).sort(), ['checkpoint-0.pth', 'checkpoint-1.pth', 'checkpoint-2.pth', 'checkpoint-3.pth', 'loss.csv', 'loss.png']);
    assert.equal(readFileSync(join(dir, 'run/loss.csv'), 'utf8').trim().split('\n').length, 5);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('egret train lavin from fresh adapters lowers the loss; its checkpoint holds the trained adapters and loads for inference', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-train-fresh-'));
  try {
    const data = tinyScienceQa(dir, ['a0', 'a2', 'a1', 'a3']);
    const out = join(dir, 'run');
    const trace = join(dir, 'trace.safetensors');
    const run = await egret('train', 'lavin', ...MODEL, '--data', data, '--out', out, '--batch-size', '2', '--accum-iter', '1', '--no-shuffle',
      '--lr', '1e-2', '--schedule', 'constant', '--max-steps', '12', '--threads', '1', '--trace', trace);
    assert.equal(run.code, 0, run.stderr);
    await withFiles([trace, join(out, 'checkpoint-5.pth')], async ([got, checkpoint]) => {
      const losses = await got!.readFloat32('losses');
      assert.equal(losses.length, 12);
      // Two batches alternate: compare each batch's first and last loss.
      assert.ok(losses[10]! < losses[0]! && losses[11]! < losses[1]!, `losses ${Array.from(losses)}`);
      assert.ok(checkpoint!.has('model.module.layers.0.adapter_attn.conv_B.weight'));
      assert.ok(Array.from(await checkpoint!.readFloat32('model.module.layers.0.adapter_attn.conv_B.weight')).some((x) => x !== 0), 'up-projections trained away from zero');
    });
    const generated = await egret('generate', ...MODEL, '--adapter', join(out, 'checkpoint-5.pth'), '--threads', '1', '--image', join(DIR, 'images/a0.png'),
      '--prompt', 'Question: Which animal is shown?', '--max-new-tokens', '4', '--json');
    assert.equal(generated.code, 0, generated.stderr);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('egret train lavin --resume: a run stopped after 2 updates and resumed ends with the uninterrupted run\'s adapters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-train-resume-'));
  try {
    const data = tinyScienceQa(dir, ['a0', 'a2', 'a1', 'a3']);
    // Shuffled data, dropout and a cosine schedule: the order, the masks and the rate must all pick up where they were.
    const common = [...MODEL, '--data', data, '--batch-size', '1', '--accum-iter', '2', '--epochs', '3', '--warmup-epochs', '1', '--dropout', '0.1', '--seed', '7', '--threads', '1'];
    const whole = await egret('train', 'lavin', ...common, '--out', join(dir, 'whole'));
    assert.equal(whole.code, 0, whole.stderr);
    const part = await egret('train', 'lavin', ...common, '--out', join(dir, 'part'), '--max-steps', '3');
    assert.equal(part.code, 0, part.stderr);
    const resumed = await egret('train', 'lavin', ...common, '--resume', join(dir, 'part'));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming at update 3 /);
    await withFiles([join(dir, 'whole/checkpoint-2.pth'), join(dir, 'part/checkpoint-2.pth')], async ([a, b]) => {
      const names = a!.list().map((t) => t.name).filter((n) => n.startsWith('model.') || n.startsWith('egret_optimizer.'));
      assert.ok(names.length > 229);
      for (const name of names) assert.deepEqual(await b!.readFloat32(name), await a!.readFloat32(name), name);
    });
    assert.deepEqual(readFileSync(join(dir, 'part/loss.csv'), 'utf8').split('\n').map((l) => l.split(',').slice(0, 4).join(',')),
      readFileSync(join(dir, 'whole/loss.csv'), 'utf8').split('\n').map((l) => l.split(',').slice(0, 4).join(',')));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('SIGKILL while egret train lavin saves leaves a loadable, resumable checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-train-kill-'));
  try {
    const data = tinyScienceQa(dir, ['a0', 'a2']);
    const out = join(dir, 'run');
    // Every update ends an epoch here, so every update saves: kills land in saves often.
    for (const delayMs of [150, 400, 700]) {
      const child = spawn(process.execPath, ['bin/egret', 'train', 'lavin', ...MODEL, '--data', data, ...(existsSync(out) && readdirSync(out).some((n) => n.endsWith('.pth')) ? ['--resume', out] : ['--out', out]),
        '--batch-size', '2', '--accum-iter', '1', '--epochs', '1000', '--threads', '1'], { cwd: ROOT, stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // Wait for the first checkpoint, then kill after a while.
      for (const until = Date.now() + 60_000; Date.now() < until && !(existsSync(out) && readdirSync(out).some((n) => /^checkpoint-\d+\.pth$/.test(n))); ) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
      for (const name of readdirSync(out).filter((n) => /^checkpoint-\d+\.pth$/.test(n))) {
        const file = await openCheckpointFile(join(out, name));
        assert.ok(file.has('model.module.adapter_modality_embedding.weight'), name);
        await file.close();
      }
    }
    const resumed = await egret('train', 'lavin', ...MODEL, '--data', data, '--resume', out, '--batch-size', '2', '--accum-iter', '1', '--epochs', '1000', '--max-steps', '1', '--threads', '1');
    // Already past update 1: nothing left to do, and nothing refused.
    assert.equal(resumed.code, 0, resumed.stderr);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('egret train lavin bad input: exit 2 before any step, a previous run left as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-train-bad-'));
  try {
    const data = tinyScienceQa(dir, ['a0', 'a2']);
    const ok = ['--batch-size', '2', '--max-steps', '1', '--threads', '1'];
    assertInputError(await egret('train', 'lavin', ...MODEL, '--data', join(dir, 'nowhere'), '--out', join(dir, 'o1'), ...ok), /no problems\.json/);
    assertInputError(await egret('train', 'lavin', ...MODEL, '--data', data, '--split', 'minitrain', '--out', join(dir, 'o2'), ...ok), /no split 'minitrain'/);
    rmSync(join(data, 'images/train/a0/image.png'));
    assertInputError(await egret('train', 'lavin', ...MODEL, '--data', data, '--out', join(dir, 'o3'), ...ok), /problem a0: image .* is missing/);
    copyFileSync(join(DIR, 'images/a0.png'), join(data, 'images/train/a0/image.png'));
    const previous = join(dir, 'previous');
    mkdirSync(previous);
    copyFileSync(ADAPTER, join(previous, 'checkpoint-19.pth'));
    const before = statSync(join(previous, 'checkpoint-19.pth')).mtimeMs;
    assertInputError(await egret('train', 'lavin', ...MODEL, '--data', data, '--out', previous, ...ok), /holds another run's checkpoints .*--resume/);
    assert.deepEqual(readdirSync(previous), ['checkpoint-19.pth']);
    assert.equal(statSync(join(previous, 'checkpoint-19.pth')).mtimeMs, before);
    for (const o of ['o1', 'o2', 'o3']) assert.equal(existsSync(join(dir, o)), false, `${o} was created`);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
