import type { Value } from '../ir.js';
import { axisOf } from '../shape.js';
import { ints } from './tensor.js';

function reduce(op: string, x: Value, axes: readonly number[], keepDims: boolean): Value {
  const norm = axes.map((a) => axisOf(op, x, a));
  const shape = keepDims ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
  return x.graph.node(op, [x, ints(x, norm)], [{ type: x.type, shape }], { keepdims: keepDims ? 1 : 0 })[0]!;
}

export const reduceMean = (x: Value, axes: readonly number[], keepDims = true) => reduce('ReduceMean', x, axes, keepDims);
export const reduceSum = (x: Value, axes: readonly number[], keepDims = true) => reduce('ReduceSum', x, axes, keepDims);
export const reduceMax = (x: Value, axes: readonly number[], keepDims = true) => reduce('ReduceMax', x, axes, keepDims);

/** Index of the maximum along `axis` (int64), first on ties like torch.argmax. */
export function argMax(x: Value, axis: number, keepDims = false): Value {
  const a = axisOf('ArgMax', x, axis);
  const shape = keepDims ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
  return x.graph.node('ArgMax', [x], [{ type: 'int64', shape }], { axis: a, keepdims: keepDims ? 1 : 0, select_last_index: 0 })[0]!;
}
