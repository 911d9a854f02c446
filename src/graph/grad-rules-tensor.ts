/** Gradient rules of shape, indexing and reduction ops. */
import type { GradCall, GradRule } from './autodiff-context.js';
import type { Value } from './ir.js';
import * as op from './ops/index.js';

const normAxes = (axes: readonly number[], rank: number) => axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);

/** The inverse of a permutation. */
function inverse(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** The reduced axes of a Reduce* node: its constant axes input, or every axis when there is none. */
function reducedAxes(c: GradCall): number[] {
  const x = c.input(0);
  const axes = c.inputs[1] ? c.constInts(1, 'axes') : [];
  if (!axes.length) {
    if (c.attr('noop_with_empty_axes', 0)) throw c.error('an empty axes list that means no reduction is not supported');
    return x.shape.map((_, i) => i);
  }
  return normAxes(axes, x.rank);
}

/** The gradient of a reduction's output with the reduced axes back in (as 1s), then broadcast to the input. */
function spread(c: GradCall, axes: readonly number[]): Value {
  const x = c.input(0);
  let g = c.grad();
  if (!c.attr('keepdims', 1)) g = op.unsqueeze(g, axes);
  return c.expandTo(g, c.shapes.shapeOf(x, [g]), x.shape);
}

/** Zeros of `data`'s shape with `updates` added at Gather-style `indices` along `axis` (repeated indices add up). */
function scatterAddAlong(c: GradCall, data: Value, indices: Value, updates: Value, axis: number): Value {
  let idx = op.cast(indices, 'int64');
  // Gather accepts negative indices; ScatterND's are normalised first so both address the same rows.
  idx = op.where(op.less(idx, 0), op.add(idx, op.squeeze(c.shapes.dimOf(data, axis, [updates]), [0])), idx);
  if (axis === 0) return op.scatterND(c.zerosLike(data, [updates]), op.unsqueeze(idx, [-1]), updates, 'add');
  // Move the indexed axis to the front: updates [pre, I, post] → [I, pre, post]; data [pre, n, post] → [n, pre, post].
  const r = indices.rank;
  const rank = data.rank;
  const updatesPerm = [...range(axis, axis + r), ...range(0, axis), ...range(axis + r, updates.rank)];
  const dataPerm = [axis, ...range(0, axis), ...range(axis + 1, rank)];
  const front = op.transpose(updates, updatesPerm);
  const zeros = op.transpose(c.zerosLike(data, [updates]), dataPerm);
  return op.transpose(op.scatterND(zeros, op.unsqueeze(idx, [-1]), front, 'add'), inverse(dataPerm));
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** GatherND indices with the `batchDims` leading batch coordinates written out, for ScatterND (which has none). */
function withBatchCoordinates(c: GradCall, data: Value, indices: Value, batchDims: number): Value {
  const g = c.graph;
  const lead = indices.shape.slice(0, -1);
  const targetShape = c.shapes.join([...lead.map((_, i) => c.shapes.dimOf(indices, i)), 1n]);
  const columns: Value[] = [];
  for (let b = 0; b < batchDims; b++) {
    const n = op.squeeze(c.shapes.dimOf(data, b, [indices]), [0]);
    const ids = g.node('Range', [op.scalar(n, 0), n, op.scalar(n, 1)], [{ type: 'int64', shape: [data.shape[b]!] }])[0]!;
    const shaped = op.reshape(ids, lead.map((_, i) => (i === b ? -1 : 1)).concat([1]));
    columns.push(c.expandTo(shaped, targetShape, [...lead, 1]));
  }
  return op.concat([...columns, indices], -1);
}

export const tensorRules: Record<string, GradRule> = {
  Reshape: (c) => {
    const x = c.input(0);
    return [c.reshapeTo(c.grad(), c.shapes.shapeOf(x, [c.grad()], true), x.shape)];
  },
  Transpose: (c) => [op.transpose(c.grad(), inverse(c.attr('perm', [] as number[])))],
  Unsqueeze: (c) => [op.squeeze(c.grad(), normAxes(c.constInts(1, 'axes'), c.outputs[0]!.rank))],
  Squeeze: (c) => [op.unsqueeze(c.grad(), normAxes(c.constInts(1, 'axes'), c.input(0).rank))],
  Expand: (c) => [c.sumTo(c.grad(), c.input(0))],
  Concat: (c) => {
    const axis = c.attr('axis', 0);
    const g = c.grad();
    const parts = c.inputs.map((v) => v!);
    const sizes = c.shapes.join(parts.map((v) => {
      const d = v.shape[axis < 0 ? axis + v.rank : axis]!;
      return typeof d === 'number' ? BigInt(d) : c.shapes.dimOf(v, axis, [g]);
    }));
    const pieces = c.graph.node('Split', [g, sizes], parts.map((v) => ({ type: v.type, shape: v.shape })), { axis });
    return c.each((i) => pieces[i]);
  },
  Split: (c) => {
    const axis = c.attr('axis', 0);
    const alive = c.grads.filter((g): g is Value => !!g);
    const parts = c.outputs.map((y, i) => c.grads[i] ?? c.zerosLike(y, alive));
    return [op.concat(parts, axis)];
  },
  Slice: (c) => {
    const x = c.input(0);
    const g = c.grad();
    const axes = c.inputs[3] ? normAxes(c.constInts(3, 'axes'), x.rank) : range(0, x.rank);
    const steps = c.inputs[4] ? c.constInts(4, 'steps') : axes.map(() => 1);
    if (steps.some((s) => s !== 1)) throw c.error('only unit steps are supported');
    // Pad the gradient back: before = the clamped start, after = dim − before − sliced length.
    const starts = c.ints(1);
    const known = starts && axes.every((a) => typeof x.shape[a] === 'number' && typeof g.shape[a] === 'number');
    if (known) {
      const pads = new Array<number>(2 * x.rank).fill(0);
      axes.forEach((a, j) => {
        const d = x.shape[a] as number;
        const s = starts[j]!;
        const before = Math.min(Math.max(s < 0 ? s + d : s, 0), d);
        pads[a] = before;
        pads[a + x.rank] = d - before - (g.shape[a] as number);
      });
      return [op.pad(g, pads)];
    }
    const dims = c.shapes.join(axes.map((a) => c.shapes.dimOf(x, a, [g])));
    const lengths = c.shapes.join(axes.map((a) => c.shapes.dimOf(g, a)));
    const s = c.input(1);
    const before = op.minimum(op.maximum(op.where(op.less(s, 0), op.add(s, dims), s), 0), dims);
    const after = op.sub(op.sub(dims, before), lengths);
    const at = (v: Value, j: number) => op.slice(v, [0], [j], [j + 1]);
    const pads = c.shapes.join([
      ...range(0, x.rank).map((a) => (axes.includes(a) ? at(before, axes.indexOf(a)) : 0n)),
      ...range(0, x.rank).map((a) => (axes.includes(a) ? at(after, axes.indexOf(a)) : 0n)),
    ]);
    return [op.pad(g, pads, x.shape)];
  },
  Gather: (c) => {
    const data = c.input(0);
    return [scatterAddAlong(c, data, c.input(1), c.grad(), c.attr('axis', 0))];
  },
  GatherND: (c) => {
    const [data, indices] = [c.input(0), c.input(1)];
    const batchDims = c.attr('batch_dims', 0);
    const full = batchDims ? withBatchCoordinates(c, data, indices, batchDims) : indices;
    return [op.scatterND(c.zerosLike(data, [c.grad()]), full, c.grad(), 'add')];
  },
  GatherElements: (c) => {
    const data = c.input(0);
    return [op.scatterElements(c.zerosLike(data, [c.grad()]), c.input(1), c.grad(), c.attr('axis', 0), 'add')];
  },
  ScatterND: (c) => {
    if (c.attr('reduction', 'none') !== 'none') throw c.error('only reduction none is supported');
    const [indices, updates, g] = [c.input(1), c.input(2), c.grad()];
    return c.each((i) => (i === 0 ? op.scatterND(g, indices, c.zerosLike(updates, [g])) : i === 2 ? op.gatherND(g, indices) : undefined));
  },
  ScatterElements: (c) => {
    if (c.attr('reduction', 'none') !== 'none') throw c.error('only reduction none is supported');
    const [indices, updates, g, axis] = [c.input(1), c.input(2), c.grad(), c.attr('axis', 0)];
    return c.each((i) => (i === 0 ? op.scatterElements(g, indices, c.zerosLike(updates, [g]), axis)
      : i === 2 ? op.gatherElements(g, indices, axis) : undefined));
  },
  ReduceSum: (c) => [spread(c, reducedAxes(c))],
  ReduceMean: (c) => {
    const axes = reducedAxes(c);
    const x = c.input(0);
    return [op.div(spread(c, axes), c.elements(x, axes))];
  },
  // The gradient goes to the maxima, split evenly among ties (torch.amax).
  ReduceMax: (c) => {
    const axes = reducedAxes(c);
    const x = c.input(0);
    let y = c.outputs[0]!;
    if (!c.attr('keepdims', 1)) y = op.unsqueeze(y, axes);
    const hits = op.cast(op.equal(x, y), x.type);
    return [op.div(op.mul(spread(c, axes), hits), op.reduceSum(hits, axes, true))];
  },
};
