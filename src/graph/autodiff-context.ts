/**
 * What a gradient rule sees of its node, and the shape helpers rules share. Rules build their backward ops with
 * the ordinary op builders, into the forward graph.
 *
 * Runtime shapes are built without reading the forward tensor whose shape they describe whenever the graph's
 * symbolic dims allow it: a known dim is a constant, and a symbol is read from the runtime shape of a tensor the
 * backward pass holds anyway (`alive`, usually the incoming gradient), since equal symbols are equal dims. Only a
 * symbol found nowhere else reads the forward tensor's own shape, which keeps that tensor until the backward pass.
 */
import { GraphError, type AttrValue, type Graph, type Node, type Value } from './ir.js';
import * as op from './ops/index.js';
import { sameDim } from './shape.js';
import type { Dim } from './types.js';

/** Builds backward ops for one forward node: returns d(loss)/d(input i) where `needs[i]`, undefined elsewhere. */
export type GradRule = (c: GradCall) => readonly (Value | undefined)[];

/** Helpers shared by all rules of one backward pass (caches of shape reads). */
export class ShapeReader {
  private readonly dims = new Map<string, Value>();

  constructor(readonly graph: Graph) {}

  /**
   * The runtime shape of `v` as int64 [rank]. With `inferOne`, one dim that no tensor in `alive` carries becomes
   * -1 (for Reshape, which infers it) instead of a read of `v`'s own shape.
   */
  shapeOf(v: Value, alive: readonly Value[] = [], inferOne = false): Value {
    let inferred = false;
    const pieces = v.shape.map((d, i): bigint | Value => {
      if (typeof d === 'number') return BigInt(d);
      const found = this.symbol(d, alive);
      if (found) return found;
      if (inferOne && !inferred) {
        inferred = true;
        return -1n;
      }
      return this.read(v, i);
    });
    return this.join(pieces);
  }

  /** Dim `axis` of `v` at run time as int64 [1]. */
  dimOf(v: Value, axis: number, alive: readonly Value[] = []): Value {
    const a = axis < 0 ? axis + v.rank : axis;
    const d = v.shape[a]!;
    if (typeof d === 'number') return this.graph.constant('int64', [1], [BigInt(d)], 'dim');
    return this.symbol(d, alive) ?? this.read(v, a);
  }

  /** int64 [n] from constants and int64 [1] pieces. */
  join(pieces: readonly (bigint | Value)[]): Value {
    const parts: Value[] = [];
    let run: bigint[] = [];
    const flush = () => {
      if (run.length) parts.push(this.graph.constant('int64', [run.length], run, 'shape'));
      run = [];
    };
    for (const p of pieces) {
      if (typeof p === 'bigint') run.push(p);
      else {
        flush();
        parts.push(p);
      }
    }
    flush();
    if (!parts.length) return this.graph.constant('int64', [0], [], 'shape');
    return parts.length === 1 ? parts[0]! : op.concat(parts, 0);
  }

  /** A symbol's value, read from the shape of a tensor in `alive` that carries it (or a product of such symbols). */
  private symbol(sym: string, alive: readonly Value[]): Value | undefined {
    for (const v of alive) {
      const j = v.shape.indexOf(sym);
      if (j >= 0) return this.read(v, j);
    }
    if (!sym.includes('*')) return undefined;
    let product: Value | undefined;
    let known = 1n;
    for (const f of sym.split('*')) {
      if (/^\d+$/.test(f)) {
        known *= BigInt(f);
        continue;
      }
      const part = this.symbol(f, alive);
      if (!part) return undefined;
      product = product ? op.mul(product, part) : part;
    }
    if (!product) return this.graph.constant('int64', [1], [known], 'dim');
    return known === 1n ? product : op.mul(product, this.graph.constant('int64', [1], [known], 'dim'));
  }

  /** Dim `i` of `v`'s runtime shape, int64 [1] (ONNX Shape with start/end, opset 15). */
  private read(v: Value, i: number): Value {
    const key = `${v.name}\u0000${i}`;
    let d = this.dims.get(key);
    if (!d) {
      d = this.graph.node('Shape', [v], [{ type: 'int64', shape: [1] }], { start: i, end: i + 1 })[0]!;
      this.dims.set(key, d);
    }
    return d;
  }
}

/** One forward node as its gradient rule sees it. */
export class GradCall {
  constructor(
    readonly node: Node,
    readonly inputs: readonly (Value | undefined)[],
    readonly outputs: readonly Value[],
    /** d(loss)/d(output i), undefined for outputs the loss does not depend on. */
    readonly grads: readonly (Value | undefined)[],
    /** Which inputs need a gradient. */
    readonly needs: readonly boolean[],
    readonly shapes: ShapeReader,
  ) {}

  get graph(): Graph {
    return this.outputs[0]!.graph;
  }

  /** Input `i`, which must be present. */
  input(i: number): Value {
    const v = this.inputs[i];
    if (!v) throw this.error(`has no input ${i}`);
    return v;
  }

  /** The gradient of output `i`, which must have one. */
  grad(i = 0): Value {
    const g = this.grads[i];
    if (!g) throw this.error(`output ${i} has no gradient`);
    return g;
  }

  attr<T extends AttrValue>(name: string, fallback: T): T {
    return (this.node.attrs[name] as T | undefined) ?? fallback;
  }

  /** The values of constant int64 input `i` (axes, shapes, slice bounds), or undefined when it is computed. */
  ints(i: number): number[] | undefined {
    const v = this.inputs[i];
    if (!v) return undefined;
    const w = this.graph.initializer(v.name);
    if (!w || !(w.bytes instanceof Uint8Array) || w.type !== 'int64') return undefined;
    const view = new DataView(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength);
    return Array.from({ length: w.byteLength / 8 }, (_, k) => Number(view.getBigInt64(k * 8, true)));
  }

  /** Like ints(), but the input must be a constant. */
  constInts(i: number, what: string): number[] {
    const values = this.ints(i);
    if (!values) throw this.error(`needs constant ${what} to be differentiated`);
    return values;
  }

  /** `build()` for inputs that need a gradient, undefined for the others. */
  each(build: (i: number) => Value | undefined): (Value | undefined)[] {
    return this.needs.map((need, i) => (need ? build(i) : undefined));
  }

  /** Sums the broadcast dims of gradient `g` back to the shape of input `like` (numpy broadcasting, reversed). */
  sumTo(g: Value, like: Value): Value {
    const lead = g.rank - like.rank;
    if (lead < 0) throw this.error(`gradient ${g.describe()} has a lower rank than ${like.describe()}`);
    const dropped: number[] = [];
    const kept: number[] = [];
    let dynamic = false;
    for (let i = 0; i < g.rank; i++) {
      if (i < lead) {
        dropped.push(i);
        continue;
      }
      const want = like.shape[i - lead]!;
      const have = g.shape[i]!;
      if (sameDim(want, have) === true) continue;
      if (want === 1) kept.push(i);
      else dynamic = true;
    }
    if (dynamic) return this.sumToDynamic(g, like, lead);
    let out = g;
    if (dropped.length || kept.length) out = op.reduceSum(g, [...dropped, ...kept], true);
    if (dropped.length) out = op.squeeze(out, dropped);
    return out;
  }

  /**
   * Broadcasting that only the run decides (a symbolic dim against 1 or another symbol): the axes where the
   * runtime shapes differ are summed.
   */
  private sumToDynamic(g: Value, like: Value, lead: number): Value {
    const target = this.shapes.shapeOf(like, [g]);
    const padded = lead ? op.concat([this.graph.constant('int64', [lead], Array(lead).fill(1n), 'ones'), target], 0) : target;
    const differ = op.not(op.equal(padded, op.shapeOf(g)));
    const axes = op.reshape(this.graph.node('NonZero', [differ], [{ type: 'int64', shape: [1, this.graph.fresh('axes')] }])[0]!, [-1]);
    const summed = this.graph.node('ReduceSum', [g, axes], [{ type: g.type, shape: g.shape.map(() => this.graph.fresh('sum_dim')) }],
      { keepdims: 1, noop_with_empty_axes: 1 })[0]!;
    return this.reshapeTo(summed, target, like.shape);
  }

  /** Reshape to the runtime shape `shape`, declared as `declared`. */
  reshapeTo(x: Value, shape: Value, declared: readonly Dim[]): Value {
    return this.graph.node('Reshape', [x, shape], [{ type: x.type, shape: declared }])[0]!;
  }

  /** Broadcast `x` to the runtime shape `shape`, declared as `declared`. */
  expandTo(x: Value, shape: Value, declared: readonly Dim[]): Value {
    return this.graph.node('Expand', [x, shape], [{ type: x.type, shape: declared }])[0]!;
  }

  /** The number of elements of `x` along `axes`, as a scalar of x's type (known dims fold to a constant). */
  elements(x: Value, axes: readonly number[]): Value {
    const dims = axes.map((a) => x.shape[a]!);
    if (dims.every((d): d is number => typeof d === 'number')) return op.scalar(x, dims.reduce((a, b) => a * b, 1));
    const sizes = this.shapes.join(axes.map((a) => this.shapes.dimOf(x, a, this.grads.filter((g): g is Value => !!g))));
    return op.cast(this.graph.node('ReduceProd', [sizes], [{ type: 'int64', shape: [] }], { keepdims: 0 })[0]!, x.type);
  }

  /** Zeros of `like`'s shape, read from `alive` tensors where possible. */
  zerosLike(like: Value, alive: readonly Value[] = []): Value {
    return op.filled(this.shapes.shapeOf(like, alive), like.type, 0, like.shape);
  }

  error(why: string): GraphError {
    return new GraphError(`gradient of ${this.node.opType} node '${this.node.name}': ${why}`);
  }
}
