/**
 * Models trained from scratch: every weight of a model description made fresh from a seed, and the trained
 * tensors taken back into the checkpoint's own names and layouts (a linear layer's weight is trained as the graph
 * stores it, transposed and stacked with its siblings; see Graph.storedTransposed).
 */
import type { Graph } from '../graph/ir.js';
import { transpose2d } from '../graph/weights.js';
import { MemorySource } from '../io/memory-source.js';
import { seededRandom } from '../generate/sampling.js';

/** How a fresh tensor starts: N(0, std²) (truncated at ±2 std, as timm's trunc_normal_) or a constant. */
export type Init = { normal: number } | { constant: number };

export interface TensorSpec {
  shape: readonly number[];
  init: Init;
}

/** Fresh tensors under their checkpoint names, drawn in name order from one seeded stream. */
export function freshTensors(specs: ReadonlyMap<string, TensorSpec>, seed: number): MemorySource {
  const random = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const name of [...specs.keys()].sort()) {
    const { shape, init } = specs.get(name)!;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if ('constant' in init) {
      data.fill(init.constant);
    } else {
      for (let i = 0; i < data.length; i++) {
        let z = gaussian();
        while (Math.abs(z) > 2) z = gaussian();
        data[i] = z * init.normal;
      }
    }
    tensors[name] = { shape, data };
  }
  return new MemorySource(tensors);
}

/**
 * The checkpoint tensors behind trained graph weights: a weight the graph stores as its checkpoint tensors
 * transposed and stacked ([k, Σ n_j] for tensors [n_j, k]) is split and transposed back; any other keeps its name
 * and values. `shapes` gives each checkpoint tensor's shape.
 */
export function checkpointTensors(graph: Graph, trained: ReadonlyMap<string, Float32Array>, shapes: (name: string) => readonly number[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, values] of trained) {
    const parts = graph.storedTransposed.get(name);
    if (!parts) {
      out.set(name, values);
      continue;
    }
    const rows = parts.map((part) => shapes(part)[0]!);
    const total = rows.reduce((a, b) => a + b, 0);
    const k = values.length / total;
    const back = transpose2d(values, k, total);
    let at = 0;
    parts.forEach((part, i) => {
      out.set(part, back.slice(at * k, (at + rows[i]!) * k));
      at += rows[i]!;
    });
  }
  return out;
}
