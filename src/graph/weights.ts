import { GraphError, type Graph, type Value } from './ir.js';
import type { TensorSource } from '../io/checkpoint.js';

/** Where layouts differ from the names model code uses: renames, and rows stored in another order. */
export interface WeightLayout {
  /** Checkpoint name of a model-code name (e.g. HF LLaMA names → Meta's). */
  rename(name: string): string;
  /** A row order to apply at load (dst row i ← stored row order[i]), e.g. Meta's interleaved RoPE rows. */
  rowOrder?(checkpointName: string, shape: readonly number[]): readonly number[] | undefined;
}

export const identityLayout: WeightLayout = { rename: (n) => n };

/**
 * Names model code's weights exactly as the checkpoint does: `scope.at('model.layers').at(3).weight('self_attn.q_proj.weight')`
 * reads 'model.layers.3.self_attn.q_proj.weight' (through the layout's rename). Weights are read lazily, when the
 * graph is serialised, and converted to float32.
 */
export class WeightScope {
  constructor(
    readonly graph: Graph,
    readonly source: TensorSource,
    readonly prefix = '',
    readonly layout: WeightLayout = identityLayout,
  ) {}

  /** A nested scope: `at('model.layers').at(3)`. */
  at(part: string | number): WeightScope {
    return new WeightScope(this.graph, this.source, this.join(String(part)), this.layout);
  }

  /** The checkpoint name of `leaf` in this scope. */
  name(leaf: string): string {
    return this.layout.rename(this.join(leaf));
  }

  has(leaf: string): boolean {
    return this.source.has(this.name(leaf));
  }

  shape(leaf: string): number[] {
    return this.source.info(this.name(leaf)).shape;
  }

  /** The tensor as a float32 graph weight named as in the checkpoint; `transpose` reverses a 2-D tensor's dims. */
  weight(leaf: string, opts: { transpose?: boolean } = {}): Value {
    const name = this.name(leaf);
    const shape = this.shape(leaf);
    if (opts.transpose && shape.length !== 2) throw new GraphError(`weight '${name}' [${shape}] must be 2-D to be transposed`);
    const outShape = opts.transpose ? [shape[1]!, shape[0]!] : shape;
    const count = shape.reduce((a, b) => a * b, 1);
    const value = this.graph.weight(name, 'float32', outShape, async () => {
      let data = await this.read(leaf);
      if (opts.transpose) data = transpose2d(data, shape[0]!, shape[1]!);
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }, count * 4);
    this.graph.checkpointShapes.set(name, { tensor: name, shape });
    return value;
  }

  /** The tensor's values in model-code order (the layout's row order applied), read now. */
  async read(leaf: string): Promise<Float32Array> {
    const name = this.name(leaf);
    const data = await this.source.readFloat32(name);
    const shape = this.shape(leaf);
    const order = this.layout.rowOrder?.(name, shape);
    return order ? permuteRows(data, shape.slice(1).reduce((a, b) => a * b, 1), order) : data;
  }

  private join(leaf: string): string {
    return this.prefix ? `${this.prefix}.${leaf}` : leaf;
  }
}

export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  // Blocked so that reads and writes both stay in cache for 4096×11008 weights.
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
