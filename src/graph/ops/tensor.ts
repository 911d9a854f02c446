import { GraphError, type Value } from '../ir.js';
import { axisOf, broadcast, dimProduct, dimQuotient, dimSum, fail, sameDim } from '../shape.js';
import type { Dim, ElemType, Shape } from '../types.js';

function ints(like: Value, values: readonly number[]): Value {
  return like.graph.constant('int64', [values.length], values.map((v) => BigInt(v)), 'ints');
}

/**
 * Reshape with ONNX semantics: 0 copies the input dim at that position, -1 is inferred. Symbolic dims are
 * tracked (e.g. [batch, seq, 64] → [-1, 64] gives [batch*seq, 64]).
 */
export function reshape(x: Value, target: readonly number[]): Value {
  const dims: (Dim | undefined)[] = target.map((t, i) => (t === 0 ? x.shape[i] : t === -1 ? undefined : t));
  if (target.filter((t) => t === -1).length > 1) fail('Reshape', [x], `more than one -1 in ${JSON.stringify(target)}`);
  const inferAt = dims.indexOf(undefined);
  if (inferAt >= 0) {
    const known = dims.filter((d, i): d is Dim => i !== inferAt && d !== undefined);
    const q = dimQuotient(x.shape, known);
    dims[inferAt] = q ?? x.graph.fresh('reshape_dim');
  } else {
    const before = dimProduct(x.shape);
    const after = dimProduct(dims as Dim[]);
    if (sameDim(before, after) === false) fail('Reshape', [x], `cannot reshape ${before} elements to ${JSON.stringify(target)}`);
  }
  return x.graph.node('Reshape', [x, ints(x, target)], [{ type: x.type, shape: dims as Dim[] }])[0]!;
}

export function transpose(x: Value, perm: readonly number[]): Value {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    fail('Transpose', [x], `bad permutation ${JSON.stringify(perm)}`);
  }
  return x.graph.node('Transpose', [x], [{ type: x.type, shape: perm.map((p) => x.shape[p]!) }], { perm: [...perm] })[0]!;
}

export function concat(values: readonly Value[], axis: number): Value {
  const first = values[0];
  if (!first) throw new GraphError('Concat: no inputs');
  const a = axisOf('Concat', first, axis);
  for (const v of values) {
    if (v.rank !== first.rank || v.type !== first.type) fail('Concat', values, 'ranks or element types differ');
    v.shape.forEach((d, i) => {
      if (i !== a && sameDim(d, first.shape[i]!) === false) fail('Concat', values, `dim ${i} differs`);
    });
  }
  const shape = [...first.shape];
  shape[a] = values.slice(1).reduce<Dim>((s, v) => dimSum(s, v.shape[a]!), first.shape[a]!);
  return first.graph.node('Concat', values, [{ type: first.type, shape }], { axis: a })[0]!;
}

const INT64_MAX = 9223372036854775807n;

/**
 * Slice along `axes` with constant or tensor (int64 [n]) bounds; `end` undefined means "to the end".
 * Constant bounds on known dims give known output dims.
 */
export function slice(x: Value, axes: readonly number[], starts: readonly number[] | Value,
                      ends: readonly (number | undefined)[] | Value, steps?: readonly number[]): Value {
  const normAxes = axes.map((ax) => axisOf('Slice', x, ax));
  const shape = [...x.shape];
  normAxes.forEach((ax, i) => {
    const d = x.shape[ax]!;
    const s = Array.isArray(starts) ? starts[i] : undefined;
    const e = Array.isArray(ends) ? ends[i] : null;
    const step = steps?.[i] ?? 1;
    if (typeof d === 'number' && s !== undefined && e !== null && step > 0) {
      const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      const lo = clampIdx(s);
      const hi = e === undefined ? d : clampIdx(e);
      shape[ax] = Math.max(0, Math.ceil((hi - lo) / step));
    } else if (s === 0 && e === undefined && step === 1) {
      shape[ax] = d;
    } else {
      shape[ax] = x.graph.fresh('slice_dim');
    }
  });
  const g = x.graph;
  const startsV = Array.isArray(starts) ? ints(x, starts as number[]) : (starts as Value);
  const endsV = Array.isArray(ends)
    ? g.constant('int64', [ends.length], (ends as (number | undefined)[]).map((e) => (e === undefined ? INT64_MAX : BigInt(e))), 'ends')
    : (ends as Value);
  const inputs = [x, startsV, endsV, ints(x, normAxes)];
  if (steps) inputs.push(ints(x, steps));
  return g.node('Slice', inputs, [{ type: x.type, shape }])[0]!;
}

/** Gather along `axis` (embedding lookup, position tables): out = data[..., indices, ...]. */
export function gather(data: Value, indices: Value, axis = 0): Value {
  if (indices.type !== 'int64' && indices.type !== 'int32') fail('Gather', [data, indices], 'indices must be int64 or int32');
  const a = axisOf('Gather', data, axis);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return data.graph.node('Gather', [data, indices], [{ type: data.type, shape }], { axis: a })[0]!;
}

/**
 * GatherND: slices of `data` addressed by the last dim of `indices` (int64), the first `batchDims` dims shared
 * (batch_dims=1 picks, per sequence, rows such as the positions whose logits are wanted).
 */
export function gatherND(data: Value, indices: Value, batchDims = 0): Value {
  const k = indices.dim(-1);
  if (indices.type !== 'int64' || typeof k !== 'number') fail('GatherND', [data, indices], 'indices must be int64 with a known last dim');
  const shape = [...indices.shape.slice(0, -1), ...data.shape.slice(batchDims + k)];
  return data.graph.node('GatherND', [data, indices], [{ type: data.type, shape }], { batch_dims: batchDims })[0]!;
}

/**
 * ScatterND: a copy of `data` with slices at `indices` (int64 [..., k]) replaced by `updates`, or with `updates`
 * added to them (reduction 'add', opset 16: repeated indices accumulate).
 */
export function scatterND(data: Value, indices: Value, updates: Value, reduction?: 'add'): Value {
  if (indices.type !== 'int64') fail('ScatterND', [data, indices, updates], 'indices must be int64');
  if (data.type !== updates.type) fail('ScatterND', [data, updates], 'element types differ');
  return data.graph.node('ScatterND', [data, indices, updates], [{ type: data.type, shape: data.shape }], reduction ? { reduction } : {})[0]!;
}

/** GatherElements along `axis`: out[..., i, ...] = data[..., indices[..., i, ...], ...] (indices int64, data's rank). */
export function gatherElements(data: Value, indices: Value, axis: number): Value {
  if (indices.type !== 'int64' || indices.rank !== data.rank) fail('GatherElements', [data, indices], 'indices must be int64 of the data\'s rank');
  return data.graph.node('GatherElements', [data, indices], [{ type: data.type, shape: indices.shape }], { axis: axisOf('GatherElements', data, axis) })[0]!;
}

/** ScatterElements along `axis`, the inverse of gatherElements; reduction 'add' accumulates repeated indices. */
export function scatterElements(data: Value, indices: Value, updates: Value, axis: number, reduction?: 'add'): Value {
  if (indices.type !== 'int64') fail('ScatterElements', [data, indices, updates], 'indices must be int64');
  if (data.type !== updates.type) fail('ScatterElements', [data, updates], 'element types differ');
  const attrs: Record<string, number | string> = { axis: axisOf('ScatterElements', data, axis) };
  if (reduction) attrs['reduction'] = reduction;
  return data.graph.node('ScatterElements', [data, indices, updates], [{ type: data.type, shape: data.shape }], attrs)[0]!;
}

/** A tensor filled with `value`, of the runtime shape `shape` (int64 [rank]); `declared` is its shape in the graph. */
export function filled(shape: Value, type: ElemType, value: number, declared: Shape): Value {
  if (shape.type !== 'int64' || shape.rank !== 1) fail('Expand', [shape], 'shape must be an int64 vector');
  const fill = shape.graph.constant(type, [], [type === 'int64' ? BigInt(value) : value], 'fill');
  return shape.graph.node('Expand', [fill, shape], [{ type, shape: declared }])[0]!;
}

/**
 * Zero padding: `pads` (numbers or an int64 tensor) holds the amounts before every axis, then after every axis
 * (ONNX Pad, mode constant). `declared` is the padded shape when the pads are a tensor.
 */
export function pad(x: Value, pads: readonly number[] | Value, declared?: Shape): Value {
  let shape: Shape;
  if (Array.isArray(pads)) {
    if (pads.length !== 2 * x.rank) fail('Pad', [x], `needs ${2 * x.rank} pads, got ${pads.length}`);
    shape = x.shape.map((d, i) => (pads[i] === 0 && pads[i + x.rank] === 0 ? d
      : typeof d === 'number' ? d + pads[i]! + pads[i + x.rank]! : x.graph.fresh('pad_dim')));
  } else {
    shape = declared ?? x.shape.map(() => x.graph.fresh('pad_dim'));
  }
  const padsV = Array.isArray(pads) ? ints(x, pads) : (pads as Value);
  return x.graph.node('Pad', [x, padsV], [{ type: x.type, shape }])[0]!;
}

export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => axisOf('Unsqueeze', x, a, rank)).sort((a, b) => a - b);
  const shape: Dim[] = [];
  let src = 0;
  for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[src++]!);
  return x.graph.node('Unsqueeze', [x, ints(x, norm)], [{ type: x.type, shape }])[0]!;
}

export function squeeze(x: Value, axes: readonly number[]): Value {
  const norm = axes.map((a) => axisOf('Squeeze', x, a));
  for (const a of norm) if (sameDim(x.shape[a]!, 1) === false) fail('Squeeze', [x], `dim ${a} is not 1`);
  const shape = x.shape.filter((_, i) => !norm.includes(i));
  return x.graph.node('Squeeze', [x, ints(x, norm)], [{ type: x.type, shape }])[0]!;
}

/** Broadcasts `x` to `shape` (numbers only; use expandLike for symbolic shapes). */
export function expand(x: Value, shape: readonly number[]): Value {
  const probe = x.graph.constant('int64', [shape.length], shape.map(BigInt), 'shape');
  const out: Dim[] = shape.map((d, i) => {
    const xi = x.shape[x.rank - shape.length + i];
    return d === 1 && xi !== undefined ? xi : d;
  });
  return x.graph.node('Expand', [x, probe], [{ type: x.type, shape: out }])[0]!;
}

/**
 * Broadcasts `x` against the runtime shape of `like` (ONNX Expand broadcasts both ways): a [1, 1, D] token
 * repeated for every row of a [batch, 1, D] tensor whose batch is only known at run time.
 */
export function expandLike(x: Value, like: Value): Value {
  return x.graph.node('Expand', [x, shapeOf(like)], [{ type: x.type, shape: broadcast('Expand', [x, like]) }])[0]!;
}

/** The runtime shape of `x` as an int64 vector. */
export function shapeOf(x: Value): Value {
  return x.graph.node('Shape', [x], [{ type: 'int64', shape: [x.rank] }])[0]!;
}

/** Splits `x` along `axis` into pieces of the given sizes. */
export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  const a = axisOf('Split', x, axis);
  const d = x.shape[a]!;
  const total = sizes.reduce((s, n) => s + n, 0);
  if (typeof d === 'number' && d !== total) fail('Split', [x], `sizes ${JSON.stringify(sizes)} do not add up to dim ${d}`);
  const outs = sizes.map((n) => ({ type: x.type, shape: x.shape.map((s, i) => (i === a ? n : s)) }));
  return x.graph.node('Split', [x, ints(x, sizes)], outs, { axis: a });
}

export { ints };
