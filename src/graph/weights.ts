import { GraphError, type Graph, type Value } from './ir.js';
import type { TensorSource } from '../io/checkpoint.js';

/** How a checkpoint tensor becomes a graph weight. */
export interface WeightOptions {
  /** Reverse a 2-D tensor's dims: nn.Linear stores [out, in], MatMul wants [in, out]. */
  transpose?: boolean;
  /** A row permutation applied at load, e.g. Meta's interleaved RoPE rows → HF's rotate-half order. */
  permuteRows?: readonly number[];
}

/**
 * Names model code's weights exactly as the checkpoint does: `scope.at('model.layers').at(3).weight('self_attn.q_proj.weight')`
 * reads 'model.layers.3.self_attn.q_proj.weight'. Weights are read lazily (when the graph is serialised) and
 * converted to float32. `rename` maps the few names in which layouts differ.
 */
export class WeightScope {
  constructor(
    readonly graph: Graph,
    readonly source: TensorSource,
    readonly prefix = '',
    readonly rename: (name: string) => string = (n) => n,
  ) {}

  /** A nested scope: `at('model.layers').at(3)`. */
  at(part: string | number): WeightScope {
    return new WeightScope(this.graph, this.source, this.join(String(part)), this.rename);
  }

  /** The checkpoint name of `leaf` in this scope. */
  name(leaf: string): string {
    return this.rename(this.join(leaf));
  }

  has(leaf: string): boolean {
    return this.source.has(this.name(leaf));
  }

  shape(leaf: string): number[] {
    return this.source.info(this.name(leaf)).shape;
  }

  /** The tensor as a float32 graph weight, named as in the checkpoint. */
  weight(leaf: string, opts: WeightOptions = {}): Value {
    const name = this.name(leaf);
    const shape = this.source.info(name).shape;
    if ((opts.transpose || opts.permuteRows) && shape.length !== 2) {
      throw new GraphError(`weight '${name}' [${shape}] must be 2-D to be transposed or permuted`);
    }
    const outShape = opts.transpose ? [shape[1]!, shape[0]!] : shape;
    const count = shape.reduce((a, b) => a * b, 1);
    return this.graph.weight(name, 'float32', outShape, async () => {
      let data = await this.source.readFloat32(name);
      if (opts.permuteRows) data = permuteRows(data, shape[1]!, opts.permuteRows);
      if (opts.transpose) data = transpose2d(data, shape[0]!, shape[1]!);
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }, count * 4);
  }

  /** The tensor's values, read now (for weights that model code transforms before they enter the graph). */
  async read(leaf: string): Promise<Float32Array> {
    return this.source.readFloat32(this.name(leaf));
  }

  private join(leaf: string): string {
    return this.prefix ? `${this.prefix}.${leaf}` : leaf;
  }
}

export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  // Blocked so that both reads and writes stay in cache for 4096×11008 weights.
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    for (let j0 = 0; j0 < cols; j0 += B) {
      const iMax = Math.min(i0 + B, rows), jMax = Math.min(j0 + B, cols);
      for (let i = i0; i < iMax; i++) for (let j = j0; j < jMax; j++) out[j * rows + i] = data[i * cols + j]!;
    }
  }
  return out;
}

function permuteRows(data: Float32Array, cols: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  order.forEach((src, dst) => out.set(data.subarray(src * cols, (src + 1) * cols), dst * cols));
  return out;
}
