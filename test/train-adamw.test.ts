// The training graph's AdamW against torch.optim.AdamW's formula in float64 (issue #11): decoupled decay only
// on tensors of rank ≥ 2 not named *.bias, bias-corrected moments, eps outside the root, lr and the step as
// inputs; global-norm clipping; accumulation over micro-batches. The gradients come from the graph itself (its
// rules are checked elsewhere); every parameter must equal the reference's after every update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops/index.js';
import { ort } from '../src/runtime/session.js';
import { decaysByDefault } from '../src/train/adamw.js';
import { buildTrainingGraph, type TrainingOptions } from '../src/train/training-graph.js';
import { Trainer } from '../src/train/trainer.js';
import { ReferenceAdamW, clipGradNorm, type AdamWSettings } from './helpers/adamw-reference.js';
import { rng } from './helpers/reference.js';

const settings: AdamWSettings = { lr: 0.05, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.02 };
const shapes: Record<string, number[]> = { 'layer.weight': [3, 4], 'layer.bias': [4], norm: [4], 'conv.weight': [4, 1, 1], frozen: [4] };

function bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer);
}

/** A small non-linear model whose weights include every decay case; `frozen` never trains. */
function model(opts: Omit<TrainingOptions, 'trainable' | 'optimizer'>) {
  const g = new Graph('adamw');
  const random = rng(99);
  const w: Record<string, op.Value> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    w[name] = g.weight(name, 'float64', shape, bytes(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1)));
  }
  const x = g.input('x', 'float64', ['n', 3]);
  const h = op.tanh(op.add(op.matmul(x, w['layer.weight']!), w['layer.bias']!));
  const scaled = op.mul(op.mul(h, w['norm']!), op.add(op.reshape(w['conv.weight']!, [4]), w['frozen']!));
  const loss = op.reduceMean(op.mul(scaled, scaled), [0, 1], false);
  return buildTrainingGraph(g, loss, {
    ...opts, trainable: (n) => n in shapes && n !== 'frozen',
    optimizer: { betas: settings.betas, eps: settings.eps, weightDecay: settings.weightDecay },
  });
}

const batch = (k: number) => ({ x: new ort.Tensor('float64', Float64Array.from({ length: 6 }, (_, i) => Math.sin(k * 3.1 + i)), [2, 3]) });

async function compare(opts: { clip?: number; accumulation?: number }) {
  const training = model({ clipGradNorm: opts.clip, accumulation: opts.accumulation, gradOutputs: true });
  const decaying = training.tensors.filter((t) => t.decays).map((t) => t.name).sort();
  assert.deepEqual(decaying, ['conv.weight', 'layer.weight'], 'timm param_groups_weight_decay');
  assert.ok(training.graph.initializer('frozen'), 'a frozen weight stays an initializer');
  const trainer = await Trainer.create(training, { threads: 1, optimization: 'basic' });
  const reference = new ReferenceAdamW(settings, (n) => decaysByDefault(n, shapes[n]!));
  const params = new Map(trainer.tensors.map((t) => [t.name, Float64Array.from(trainer.param(t.name))]));
  const k = opts.accumulation ?? 1;
  let sum = new Map<string, Float64Array>();
  for (let micro = 0; micro < 4 * k; micro++) {
    const lr = settings.lr * (1 + micro) / 4; // a schedule: lr is an input
    const result = await trainer.run(batch(micro), lr);
    assert.ok(!result.grads!.has('frozen'), 'no gradient for a frozen weight');
    for (const [name, g] of result.grads!) {
      const acc = sum.get(name) ?? new Float64Array(g.length);
      g.forEach((x, i) => (acc[i]! += x / k));
      sum.set(name, acc);
    }
    assert.equal(result.updated, (micro + 1) % k === 0);
    if (!result.updated) continue;
    const norm = opts.clip === undefined ? Math.sqrt([...sum.values()].reduce((s, g) => s + g.reduce((t, x) => t + x * x, 0), 0)) : clipGradNorm(sum, opts.clip);
    assert.ok(Math.abs(result.gradNorm - norm) < 1e-12 * Math.max(1, norm), `grad norm ${result.gradNorm} vs ${norm}`);
    if (opts.clip !== undefined) assert.ok(norm > opts.clip, 'the clipping bites');
    reference.update(params, sum, lr);
    sum = new Map();
    for (const [name, p] of params) {
      const got = trainer.param(name);
      p.forEach((x, i) => assert.ok(Math.abs(got[i]! - x) < 1e-12, `${name}[${i}] after update ${reference.step}: ${got[i]} vs ${x}`));
    }
  }
  assert.equal(trainer.step, 4);
  await trainer.dispose();
}

test('AdamW update equals torch.optim.AdamW step by step', () => compare({}));
test('AdamW with global-norm clipping', () => compare({ clip: 0.05 }));
test('AdamW over gradients accumulated across three micro-batches', () => compare({ accumulation: 3 }));
test('AdamW with accumulation and clipping together', () => compare({ accumulation: 2, clip: 0.05 }));
