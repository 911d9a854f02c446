import { InputError } from '../errors.js';
import { GraphError, type Value } from './ir.js';
import { formatShape, type Dim, type Shape } from './types.js';

/** Whether two dims are the same: true, false (provably different), or undefined (not known until run time). */
export function sameDim(a: Dim, b: Dim): boolean | undefined {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return false;
  return undefined;
}

export function describeAll(values: readonly Value[]): string {
  return values.map((v) => v.describe()).join(', ');
}

/**
 * Fails with a message naming the op, the tensors and their shapes. When one of them is a checkpoint's tensor, the
 * checkpoint disagrees with the config the graph was built from: an input error, naming that tensor.
 */
export function fail(op: string, values: readonly Value[], why: string): never {
  const source = values.map((v) => v.graph.checkpointShapes.get(v.name)).find((s) => s !== undefined);
  if (source) {
    throw new InputError(`checkpoint tensor '${source.tensor}' ${formatShape(source.shape)} does not fit the model its config describes: ${op}: ${why} (${describeAll(values)})`);
  }
  throw new GraphError(`${op}: ${why} (${describeAll(values)})`);
}

/** Numpy-style broadcasting of the operands' shapes (or of `shapes`, parts of them, e.g. MatMul's batch dims). */
export function broadcast(op: string, values: readonly Value[], shapes: readonly Shape[] = values.map((v) => v.shape)): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim === 1) dim = d;
      else if (sameDim(dim, d) === false) fail(op, values, `dims ${dim} and ${d} do not broadcast at axis ${i - rank}`);
      else if (typeof dim !== 'number' && typeof d === 'number') dim = d;
    }
    out.push(dim);
  }
  return out;
}

/** Normalises a possibly negative axis for a tensor of `rank`, or fails naming the op. */
export function axisOf(op: string, v: Value, axis: number, rank = v.rank): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(op, [v], `axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** The product of dims, folding numbers and joining symbols (e.g. 'batch*seq'). */
export function dimProduct(dims: readonly Dim[]): Dim {
  let n = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n *= d;
    else symbols.push(d);
  }
  if (!symbols.length) return n;
  return n === 1 ? symbols.join('*') : [String(n), ...symbols].join('*');
}

/** The sum of two dims, symbolic when either is. */
export function dimSum(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `${a}+${b}`;
}

/** Exact division of a dim product by known dims; undefined when it cannot be decided statically. */
export function dimQuotient(total: readonly Dim[], divisor: readonly Dim[]): Dim | undefined {
  const rest = [...total];
  let known = 1;
  for (const d of divisor) {
    const i = rest.indexOf(d);
    if (i >= 0 && typeof d === 'string') rest.splice(i, 1);
    else if (typeof d === 'number') known *= d;
    else return undefined;
  }
  const numbers = rest.filter((d): d is number => typeof d === 'number').reduce((a, b) => a * b, 1);
  if (numbers % known !== 0) return undefined;
  const symbols = rest.filter((d): d is string => typeof d === 'string');
  return dimProduct([numbers / known, ...symbols]);
}

export { formatShape };
export type { Shape };
