import assert from 'node:assert/strict';
import { Graph, type Value } from '../../src/graph/ir.js';
import type { Dim, ElemType } from '../../src/graph/types.js';
import { Session, ort } from '../../src/runtime/session.js';
import type { Tensor } from './reference.js';

/** Builds a graph from named inputs, runs it once per feed set, and returns each run's first output. */
export async function runGraph(
  inputs: Record<string, { type?: ElemType; shape: Dim[] }>,
  build: (g: Graph, x: Record<string, Value>) => Value | Value[],
  feeds: Record<string, { data: ort.Tensor.DataType; shape: number[]; type?: ElemType }>[],
): Promise<{ data: Float32Array; shape: number[]; declared: readonly Dim[] }[][]> {
  const g = new Graph('test');
  const vals: Record<string, Value> = {};
  for (const [name, spec] of Object.entries(inputs)) vals[name] = g.input(name, spec.type ?? 'float32', spec.shape);
  const outs = [build(g, vals)].flat();
  outs.forEach((o, i) => g.output(o, `out${i}`));
  const session = await Session.fromGraph(g, { threads: 1 });
  try {
    const results = [];
    for (const f of feeds) {
      const tensors: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(f)) tensors[name] = new ort.Tensor((t.type ?? inputs[name]!.type ?? 'float32') as 'float32', t.data as Float32Array, t.shape);
      const r = await session.run(tensors);
      results.push(outs.map((o, i) => ({ data: r[`out${i}`]!.data as Float32Array, shape: [...r[`out${i}`]!.dims], declared: o.shape })));
    }
    return results;
  } finally {
    await session.dispose();
  }
}

/** Max |a - b| ≤ tol · max(1, max |b|): the error relative to the reference's scale. */
export function assertClose(actual: { data: ArrayLike<number>; shape: number[] }, expected: Tensor, tol = 1e-5, what = ''): void {
  assert.deepEqual(actual.shape, expected.shape, `${what} shape`);
  let scale = 1;
  for (const v of expected.data) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const d = Math.abs(actual.data[i]! - expected.data[i]!);
    if (!(d <= worst)) worst = d;
  }
  assert.ok(worst <= tol * scale, `${what}: max abs error ${worst} > ${tol} × scale ${scale}`);
}

/** Declared (symbolic or known) output dims agree with the run's actual dims where they are numbers. */
export function assertDeclaredShape(declared: readonly Dim[], actual: number[]): void {
  assert.equal(declared.length, actual.length, `rank: declared [${declared}] vs actual [${actual}]`);
  declared.forEach((d, i) => {
    if (typeof d === 'number') assert.equal(d, actual[i], `dim ${i}: declared [${declared}] vs actual [${actual}]`);
  });
}
