import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops/index.js';
import { writeOnnxModel } from '../src/graph/onnx.js';
import { Session, ort } from '../src/runtime/session.js';
import * as ref from './helpers/reference.js';

const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** y = x · W + b with W, b as weights; `reads` counts how often the lazy weight was produced. */
function linearGraph(w: ref.Tensor, b: ref.Tensor, reads = { count: 0 }): Graph {
  const g = new Graph('linear');
  const x = g.input('x', 'float32', ['m', w.shape[0]!]);
  const wv = g.weight('w', 'float32', w.shape, () => (reads.count++, bytes(w.data)), w.data.byteLength);
  g.output(op.add(op.matmul(x, wv), g.weight('b', 'float32', b.shape, bytes(b.data))), 'y');
  return g;
}

test('outputs are written into caller-provided buffers', async () => {
  const w = ref.random([64, 32], 1), b = ref.random([32], 2), x = ref.random([3, 64], 3);
  const session = await Session.fromGraph(linearGraph(w, b), { threads: 1 });
  const out = new Float32Array(3 * 32);
  await session.run({ x: new ort.Tensor('float32', x.data, [3, 64]) }, { y: new ort.Tensor('float32', out, [3, 32]) });
  const expected = ref.elementwise([ref.matmul(x, w), b], (p, q) => p + q);
  for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i]! - expected.data[i]!) < 1e-5);
  await session.dispose();
});

test('the on-disk cache is keyed, skips reading weights on a hit, and gives the same results', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-cache-test-'));
  try {
    const w = ref.random([128, 16], 4), b = ref.random([16], 5), x = ref.random([2, 128], 6);
    const reads = { count: 0 };
    const feeds = { x: new ort.Tensor('float32', x.data, [2, 128]) };
    const first = await Session.fromGraph(() => linearGraph(w, b, reads), { threads: 1, cache: { dir, key: 'ckpt-a' } });
    assert.equal(first.origin, 'file');
    const y1 = (await first.run(feeds))['y']!.data as Float32Array;
    const second = await Session.fromGraph(() => linearGraph(w, b, reads), { threads: 1, cache: { dir, key: 'ckpt-a' } });
    assert.equal(second.origin, 'cache');
    assert.equal(reads.count, 1, 'weights were read only to build the first session');
    assert.deepEqual((await second.run(feeds))['y']!.data, y1);
    const other = await Session.fromGraph(() => linearGraph(w, b, reads), { threads: 1, cache: { dir, key: 'ckpt-b' } });
    assert.equal(other.origin, 'file', 'another key is another model');
    const changed = () => {
      const g = linearGraph(w, b);
      g.output(op.mul(g.outputs[0]!, 2), 'y2');
      return g;
    };
    const otherGraph = await Session.fromGraph(changed, { threads: 1, cache: { dir, key: 'ckpt-a' } });
    assert.equal(otherGraph.origin, 'file', 'the same key with another graph (changed model code) is another model');
    await otherGraph.dispose();
    assert.equal((await readdir(dir)).filter((n) => n.includes('.tmp-')).length, 0, 'no temporary folders left');
    await Promise.all([first.dispose(), second.dispose(), other.dispose()]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('weights written as external data load and compute the same as embedded ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-external-test-'));
  try {
    const w = ref.random([256, 8], 7), b = ref.random([8], 8), x = ref.random([1, 256], 9);
    await writeOnnxModel(linearGraph(w, b), join(dir, 'model.onnx'), 16);
    const fromFile = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const embedded = await Session.fromGraph(linearGraph(w, b), { threads: 1 });
    assert.equal(embedded.origin, 'memory');
    const feeds = { x: new ort.Tensor('float32', x.data, [1, 256]) };
    assert.deepEqual((await fromFile.run(feeds))['y']!.data, (await embedded.run(feeds))['y']!.data);
    await fromFile.release();
    await embedded.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
