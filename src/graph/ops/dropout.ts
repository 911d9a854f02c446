import { GraphError, type Graph, type Value } from '../ir.js';
import { cast, mul, where } from './elementwise.js';
import { shapeOf } from './tensor.js';

/**
 * The random stream of a training graph's dropout: an int64 scalar input (`dropout_seed`) that the trainer sets
 * for every micro-batch, and a counter that gives each dropout site its own stream. A graph built without one
 * (evaluation, inference) has no dropout at all.
 */
export class DropoutNoise {
  private sites = 0;

  constructor(readonly seed: Value) {
    if (seed.type !== 'int64' || seed.rank !== 0) throw new GraphError(`dropout seed ${seed.describe()} must be an int64 scalar`);
  }

  /** A graph input `name` for the seed. */
  static input(graph: Graph, name = DROPOUT_SEED): DropoutNoise {
    return new DropoutNoise(graph.input(name, 'int64', []));
  }

  /** The next dropout site's number. */
  nextSite(): number {
    return this.sites++;
  }
}

/** The graph input that carries the dropout seed, by the trainer's convention. */
export const DROPOUT_SEED = 'dropout_seed';

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1 − p) (torch.nn.Dropout in
 * training mode), the identity without `noise`. The mask is a counter-based hash of (seed, site, element index),
 * so a run is reproducible from its seed whatever the thread count; it is not torch's generator.
 */
export function dropout(x: Value, p: number, noise: DropoutNoise | undefined): Value {
  if (!(p >= 0 && p < 1)) throw new GraphError(`dropout: probability ${p} is outside [0, 1)`);
  if (!noise || p === 0) return x;
  const g = x.graph;
  const u32 = (v: number) => g.constant('uint32', [], [v >>> 0], 'hash_const');
  const site = noise.nextSite();
  const key = mix(g, node(g, 'Add', [mix(g, cast(noise.seed, 'uint32')), u32(Math.imul(site + 1, 0x9e3779b9))]));
  const count = g.node('ReduceProd', [shapeOf(x)], [{ type: 'int64', shape: [] }], { keepdims: 0 })[0]!;
  const flat = g.node('Range', [g.constant('int64', [], [0n], 'zero'), count, g.constant('int64', [], [1n], 'one')], [{ type: 'int64', shape: [g.fresh('elements')] }])[0]!;
  const index = g.node('Reshape', [cast(flat, 'uint32'), shapeOf(x)], [{ type: 'uint32', shape: x.shape }])[0]!;
  const bits = mix(g, node(g, 'BitwiseXor', [index, key]));
  // The top 24 bits as a float in [0, 1): exact in float32.
  const uniform = mul(cast(node(g, 'BitShift', [bits, u32(8)], { direction: 'RIGHT' }), x.type), 2 ** -24);
  const keep = g.node('GreaterOrEqual', [uniform, g.constant(x.type, [], [p], 'dropout_p')], [{ type: 'bool', shape: x.shape }])[0]!;
  return where(keep, mul(x, 1 / (1 - p)), 0);
}

/** An element-wise uint32 op that keeps its first input's shape. */
function node(g: Graph, opType: string, inputs: Value[], attrs: Record<string, string> = {}): Value {
  return g.node(opType, inputs, [{ type: 'uint32', shape: inputs[0]!.shape }], attrs)[0]!;
}

/**
 * Chris Wellons' "lowbias32" integer hash (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b;
 * x ^= x >> 16), a bijection of uint32 with low bias, in ONNX uint32 ops (multiplication wraps).
 */
function mix(g: Graph, x: Value): Value {
  const u32 = (v: number) => g.constant('uint32', [], [v], 'hash_const');
  const shiftXor = (v: Value, s: number) => node(g, 'BitwiseXor', [v, node(g, 'BitShift', [v, u32(s)], { direction: 'RIGHT' })]);
  let h = shiftXor(x, 16);
  h = node(g, 'Mul', [h, u32(0x7feb352d)]);
  h = shiftXor(h, 15);
  h = node(g, 'Mul', [h, u32(0x846ca68b)]);
  return shiftXor(h, 16);
}
