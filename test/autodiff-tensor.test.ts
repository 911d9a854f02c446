// Gradient rules of shape, indexing and reduction ops against central finite differences in float64 (issue #11).
import { test } from 'node:test';
import * as op from '../src/graph/ops/index.js';
import { gradCheck, type CheckedInput } from './helpers/gradcheck.js';

const x3: CheckedInput = { shape: ['b', 3, 4], dims: [2, 3, 4] };

test('reshape, transpose, unsqueeze, squeeze, expand', async () => {
  await gradCheck('reshape with 0 and -1', { x: x3 }, (v) => op.reshape(v['x']!, [0, -1]));
  await gradCheck('reshape to rows', { x: x3 }, (v) => op.reshape(v['x']!, [-1, 2]));
  await gradCheck('reshape of a symbolic product', { x: { shape: ['b', 's', 4], dims: [2, 3, 4] } },
    (v) => op.reshape(op.mul(op.reshape(v['x']!, [-1, 4]), 2), [0, 2, 2]));
  await gradCheck('transpose', { x: x3 }, (v) => op.transpose(v['x']!, [2, 0, 1]));
  await gradCheck('unsqueeze', { x: x3 }, (v) => op.unsqueeze(v['x']!, [0, -1]));
  await gradCheck('squeeze', { x: { shape: ['b', 1, 4], dims: [2, 1, 4] } }, (v) => op.squeeze(v['x']!, [1]));
  await gradCheck('expand', { x: { shape: [3, 1], dims: [3, 1] } }, (v) => op.expand(v['x']!, [2, 3, 4]));
  await gradCheck('expandLike a symbolic shape', { x: { shape: [1, 1, 4], dims: [1, 1, 4] }, y: { ...x3, frozen: true } },
    (v) => op.mul(op.expandLike(v['x']!, v['y']!), v['y']!));
});

test('concat and split, symbolic and known', async () => {
  await gradCheck('concat', { a: x3, b: { shape: ['b', 'n', 4], dims: [2, 2, 4] } }, (v) => op.concat([v['a']!, v['b']!, v['a']!], 1));
  await gradCheck('split, one piece unused', { x: x3 }, (v) => {
    const [p, , r] = op.split(v['x']!, [1, 2, 1], -1) as [op.Value, op.Value, op.Value];
    return op.add(op.mul(p, 3), r);
  });
});

test('slice: constant, negative, symbolic and computed bounds', async () => {
  await gradCheck('slice', { x: x3 }, (v) => op.slice(v['x']!, [1, 2], [1, -3], [3, undefined]));
  await gradCheck('slice of a symbolic dim', { x: { shape: ['b', 's', 4], dims: [2, 5, 4] } }, (v) => op.slice(v['x']!, [1], [-3], [-1]));
  await gradCheck('slice with computed bounds', { x: { shape: ['b', 's', 4], dims: [2, 5, 4] }, n: { shape: ['b', 'p'], dims: [2, 2], type: 'int64', values: [0, 0, 0, 0] } },
    (v) => {
      const start = op.slice(op.shapeOf(v['n']!), [0], [1], [2]);
      return op.slice(v['x']!, [1], start, [undefined]);
    });
});

test('gather, gatherND and gatherElements accumulate repeated indices', async () => {
  const table: CheckedInput = { shape: [5, 3], dims: [5, 3] };
  await gradCheck('embedding lookup', { t: table, ids: { shape: ['b', 's'], dims: [2, 3], type: 'int64', values: [1, 4, 1, 0, -1, 1] } },
    (v) => op.gather(v['t']!, v['ids']!, 0));
  await gradCheck('gather along axis 1', { x: x3, ids: { shape: [2, 2], dims: [2, 2], type: 'int64', values: [2, 0, 2, 1] } },
    (v) => op.gather(v['x']!, v['ids']!, 1));
  await gradCheck('gather a scalar index', { x: x3, ids: { shape: [], dims: [], type: 'int64', values: [2] } }, (v) => op.gather(v['x']!, v['ids']!, -1));
  await gradCheck('gatherND batch_dims 1 (rows per sequence)', { x: { shape: ['b', 's', 4], dims: [2, 3, 4] }, rows: { shape: ['b', 'n', 1], dims: [2, 2, 1], type: 'int64', values: [2, 2, 0, 1] } },
    (v) => op.gatherND(v['x']!, v['rows']!, 1));
  await gradCheck('gatherND', { x: x3, at: { shape: [3, 2], dims: [3, 2], type: 'int64', values: [0, 1, 1, 2, 0, 1] } }, (v) => op.gatherND(v['x']!, v['at']!));
  await gradCheck('gatherElements', { x: x3, at: { shape: ['b', 3, 1], dims: [2, 3, 1], type: 'int64', values: [0, 3, 3, 1, 2, 0] } },
    (v) => op.gatherElements(v['x']!, v['at']!, -1));
});

test('scatterND and scatterElements', async () => {
  await gradCheck('scatterND', { x: x3, u: { shape: [1, 3, 4], dims: [1, 3, 4] }, at: { shape: [1, 1], dims: [1, 1], type: 'int64', values: [1] } },
    (v) => op.scatterND(v['x']!, v['at']!, v['u']!));
  await gradCheck('scatterElements', { x: x3, u: { shape: ['b', 3, 1], dims: [2, 3, 1] }, at: { shape: ['b', 3, 1], dims: [2, 3, 1], type: 'int64', values: [0, 3, 3, 1, 2, 0] } },
    (v) => op.scatterElements(v['x']!, v['at']!, v['u']!, 2));
});

test('reductions with and without kept dims, over symbolic axes', async () => {
  for (const keep of [true, false]) {
    await gradCheck(`reduceSum keep=${keep}`, { x: x3 }, (v) => op.reduceSum(v['x']!, [0, 2], keep));
    await gradCheck(`reduceMean keep=${keep}`, { x: x3 }, (v) => op.reduceMean(v['x']!, [-1], keep));
    await gradCheck(`reduceMean over a symbolic axis keep=${keep}`, { x: x3 }, (v) => op.reduceMean(v['x']!, [0, 1], keep));
    await gradCheck(`reduceMax keep=${keep}`, { x: x3 }, (v) => op.reduceMax(v['x']!, [1], keep));
  }
});
