// Gradient rules of element-wise ops against central finite differences in float64 (issue #11), with symbolic
// dims and broadcasting; Erf and GELU in float32, the only type ORT's CPU Erf kernel has.
import { test } from 'node:test';
import * as op from '../src/graph/ops/index.js';
import { gradCheck, type CheckedInput } from './helpers/gradcheck.js';

const x3: CheckedInput = { shape: ['b', 3, 4], dims: [2, 3, 4] };
const positive = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 0.3 + ((i * 7919 + seed) % 97) / 40);

test('unary ops', async () => {
  const cases: [string, (x: op.Value) => op.Value, CheckedInput?][] = [
    ['neg', op.neg], ['abs', op.abs], ['exp', op.exp], ['tanh', op.tanh], ['sigmoid', op.sigmoid],
    ['cos', op.cos], ['sin', op.sin], ['silu', op.silu], ['quickGelu', op.quickGelu],
    ['sqrt', op.sqrt, { ...x3, values: positive(24, 1) }],
    ['log', op.log, { ...x3, values: positive(24, 2) }],
    ['reciprocal', op.reciprocal, { ...x3, values: positive(24, 3) }],
    ['clip', (x) => op.clip(x, -0.5, 0.4)],
    ['identity', (x) => x.graph.node('Identity', [x], [{ type: x.type, shape: x.shape }])[0]!],
    ['cast to the same type', (x) => op.cast(op.cast(x, 'float32'), 'float64')],
  ];
  for (const [name, f, input] of cases) {
    // Cast through float32 is exact for the forward values but not differentiable at float64 precision.
    const opts = name.startsWith('cast') ? { tol: 1e-4, h: 1e-2 } : {};
    await gradCheck(name, { x: input ?? x3 }, (v) => f(v['x']!), opts);
  }
});

test('erf and gelu (float32)', async () => {
  await gradCheck('erf', { x: x3 }, (v) => op.erf(v['x']!), { type: 'float32' });
  await gradCheck('gelu', { x: { ...x3, values: Array.from({ length: 24 }, (_, i) => (i - 12) / 4) } }, (v) => op.gelu(v['x']!), { type: 'float32' });
});

test('binary ops broadcast over symbolic and known dims', async () => {
  const cases: [string, (a: op.Value, b: op.Value) => op.Value][] = [
    ['add', op.add], ['sub', op.sub], ['mul', op.mul], ['div', op.div], ['max', op.maximum], ['min', op.minimum],
  ];
  for (const [name, f] of cases) {
    const b: CheckedInput = { shape: [3, 1], dims: [3, 1], values: name === 'div' ? [0.7, -1.3, 2.1] : undefined };
    await gradCheck(`${name} [b,3,4]·[3,1]`, { a: x3, b }, (v) => f(v['a']!, v['b']!));
    await gradCheck(`${name} [4]·[b,3,4]`, { a: { shape: [4], dims: [4], values: [0.9, -1.1, 1.7, 0.6] }, b: x3 }, (v) => f(v['a']!, v['b']!));
    // Symbols against 1: only the run decides which side broadcasts.
    await gradCheck(`${name} [n,4]·[m,4] (m = 1 at run time)`, { a: { shape: ['n', 4], dims: [3, 4] }, b: { shape: ['m', 4], dims: [1, 4], values: [0.8, -1.2, 1.9, 0.5] } },
      (v) => f(v['a']!, v['b']!));
  }
  await gradCheck('pow', { a: { ...x3, values: positive(24, 5) }, b: { shape: [4], dims: [4], values: [0.5, 2, -1, 1.5] } }, (v) => op.pow(v['a']!, v['b']!));
  await gradCheck('pow by a constant', { a: x3 }, (v) => op.pow(v['a']!, 2));
  await gradCheck('one operand twice', { a: x3 }, (v) => op.mul(v['a']!, op.add(v['a']!, 1)));
});

test('max and min split ties evenly, as torch does', async () => {
  // a = b everywhere: each side gets half of the gradient; the check perturbs one side at a time, so the
  // one-sided slopes are 0 and 1 and the central difference is their mean.
  const same = [0.5, -0.25, 1, 2];
  await gradCheck('max ties', { a: { shape: [4], dims: [4], values: same }, b: { shape: [4], dims: [4], values: same } }, (v) => op.maximum(v['a']!, v['b']!), { h: 1e-3 });
});

test('where with a broadcast condition, and a mask added to scores', async () => {
  await gradCheck('where', {
    c: { shape: [1, 4], dims: [1, 4], type: 'bool', values: [1, 0, 0, 1] },
    a: x3,
    b: { shape: ['b', 1, 4], dims: [2, 1, 4] },
  }, (v) => op.where(v['c']!, v['a']!, v['b']!));
  await gradCheck('where against a number', { c: { shape: [3, 4], dims: [3, 4], type: 'bool', values: [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0] }, a: x3 },
    (v) => op.where(v['c']!, v['a']!, -3));
});
