// What the backward pass builds (issue #11): work only on paths from a trainable tensor to the loss, no weight
// gradient for frozen weights, frozen prefixes' activations never read by it, and clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradients } from '../src/graph/autodiff.js';
import { Graph, GraphError, type Value } from '../src/graph/ir.js';
import * as op from '../src/graph/ops/index.js';

const W = 8;

/** x → `before` frozen layers → adapter (trainable) → `after` frozen layers → loss. */
function stack(before: number, after: number) {
  const g = new Graph('stack');
  const frozen = (name: string) => g.weight(name, 'float32', [W, W], new Uint8Array(W * W * 4));
  let h = g.input('x', 'float32', ['batch', 'seq', W]);
  const prefix: Value[] = [h];
  for (let i = 0; i < before; i++) {
    h = op.add(h, op.gelu(op.matmul(op.rmsNorm(h, g.weight(`pre.${i}.norm`, 'float32', [W], new Uint8Array(W * 4)), 1e-6), frozen(`pre.${i}.weight`))));
    prefix.push(h);
  }
  const adapterIn = h;
  const adapter = g.weight('adapter.weight', 'float32', [W, W], new Uint8Array(W * W * 4));
  h = op.add(h, op.matmul(h, adapter));
  for (let i = 0; i < after; i++) h = op.add(h, op.silu(op.matmul(h, frozen(`post.${i}.weight`))));
  const loss = op.reduceMean(op.mul(h, h), [0, 1, 2], false);
  const forwardNodes = g.nodes.length;
  const [grad] = gradients(loss, [adapter]);
  const backward = g.nodes.slice(forwardNodes);
  const producedInPrefix = new Set(g.nodes.slice(0, forwardNodes).flatMap((n) => n.outputs));
  return { g, grad, backward, prefix, adapterIn, producedInPrefix };
}

test('a frozen prefix gets no backward work, however long it is, and only the adapter input is read from it', () => {
  const short = stack(2, 2);
  const long = stack(6, 2);
  assert.ok(short.grad && long.grad);
  assert.equal(long.backward.length, short.backward.length, 'backward node count does not grow with the frozen prefix');
  const read = new Set(long.backward.flatMap((n) => n.inputs));
  for (const v of long.prefix) {
    if (v === long.adapterIn) assert.ok(read.has(v.name), 'the adapter input is read (for the weight gradient)');
    else assert.ok(!read.has(v.name), `prefix tensor ${v.name} is not read by the backward pass`);
  }
});

test('frozen weights on the path pass gradients on but get none: one weight-gradient product per trainable', () => {
  const { backward } = stack(1, 4);
  // Weight gradients are Gemm(rowsᵀ, dy) products (transA); activation gradients are Gemm(dy, Wᵀ) (transB).
  const weightGradients = backward.filter((n) => n.opType === 'Gemm' && n.attrs['transA'] === 1);
  const activationGradients = backward.filter((n) => n.opType === 'Gemm' && n.attrs['transB'] === 1);
  assert.equal(weightGradients.length, 1);
  // Through every frozen layer after the adapter; none into the adapter's input, which no trainable tensor feeds.
  assert.equal(activationGradients.length, 4);
});

test('a trainable tensor that the loss does not depend on has no gradient', () => {
  const g = new Graph('unused');
  const a = g.input('a', 'float32', [3]);
  const b = g.input('b', 'float32', [3]);
  g.output(op.tanh(b), 'other');
  const loss = op.reduceSum(op.mul(a, a), [0], false);
  const [ga, gb] = gradients(loss, [a, b]);
  assert.ok(ga);
  assert.equal(gb, undefined);
});

test('errors name the op that has no rule and the bad inputs', () => {
  const g = new Graph('errors');
  const x = g.input('x', 'float32', [1, 1, 4, 4]);
  const y = op.resize(x, [8, 8], { mode: 'linear', coordinates: 'half_pixel' });
  assert.throws(() => gradients(op.reduceSum(y, [0, 1, 2, 3], false), [x]), (e: Error) => e instanceof GraphError && /no gradient rule for Resize/.test(e.message));
  assert.throws(() => gradients(op.reduceSum(x, [2], false), [x]), /not a scalar/);
  const ids = g.input('ids', 'int64', [3]);
  assert.throws(() => gradients(op.reduceSum(x, [0, 1, 2, 3], false), [ids]), /not floating-point/);
  const strided = op.conv(g.input('z', 'float32', [1, 1, 'h', 'w']), g.weight('k', 'float32', [1, 1, 2, 2], new Uint8Array(16)), null, { strides: [2, 2] });
  assert.throws(() => gradients(op.reduceSum(strided, [0, 1, 2, 3], false), [g.value('z')]), /strided window needs known spatial dims/);
});
