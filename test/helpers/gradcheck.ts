/**
 * Checks gradient rules against central finite differences: for y = f(x₁, …) built by `build`, the loss
 * L = Σ y ⊙ r with a random cotangent r, the backward graph's dL/dxᵢ against (L(x + h·e) − L(x − h·e)) / 2h for
 * every element e of every differentiated input.
 */
import assert from 'node:assert/strict';
import { gradients } from '../../src/graph/autodiff.js';
import { Graph, type Value } from '../../src/graph/ir.js';
import * as op from '../../src/graph/ops/index.js';
import type { Dim } from '../../src/graph/types.js';
import { Session, ort } from '../../src/runtime/session.js';
import { rng } from './reference.js';

export interface CheckedInput {
  /** Declared (possibly symbolic) shape. */
  shape: Dim[];
  /** Concrete shape of the values fed. */
  dims: number[];
  /** Values; default uniform in [-1, 1) from the seed. */
  values?: ArrayLike<number>;
  /** int64 inputs (indices) are fed but not differentiated. */
  type?: 'int64' | 'bool';
  /** Not differentiated (a frozen tensor). */
  frozen?: boolean;
}

export interface GradCheckOptions {
  /** float64 (default) or float32 for ops ORT runs only in float32. */
  type?: 'float64' | 'float32';
  /** Finite-difference step. */
  h?: number;
  /** Allowed error relative to max(1, max |analytic gradient|). */
  tol?: number;
  seed?: number;
}

/** Runs the check and returns the worst relative error (also asserted against `tol`). */
export async function gradCheck(name: string, inputs: Record<string, CheckedInput>, build: (x: Record<string, Value>, g: Graph) => Value,
                                opts: GradCheckOptions = {}): Promise<number> {
  const type = opts.type ?? 'float64';
  const h = opts.h ?? (type === 'float64' ? 1e-6 : 1e-2);
  const tol = opts.tol ?? (type === 'float64' ? 1e-7 : 2e-3);
  const random = rng(opts.seed ?? 1234);
  const Arr = type === 'float64' ? Float64Array : Float32Array;
  const values: Record<string, Float64Array | Float32Array | BigInt64Array | Uint8Array> = {};
  for (const [key, spec] of Object.entries(inputs)) {
    const n = spec.dims.reduce((a, b) => a * b, 1);
    if (spec.type === 'int64') values[key] = BigInt64Array.from(Array.from(spec.values!, (v) => BigInt(v)));
    else if (spec.type === 'bool') values[key] = Uint8Array.from(spec.values!);
    else values[key] = Arr.from(spec.values ?? Array.from({ length: n }, () => random() * 2 - 1));
  }
  const declare = (g: Graph) => Object.fromEntries(Object.entries(inputs).map(([key, spec]) => [key, g.input(key, spec.type ?? type, spec.shape)]));
  const feeds = () => Object.fromEntries(Object.entries(inputs).map(([key, spec]) =>
    [key, new ort.Tensor(spec.type ?? type, values[key]!, spec.dims)]));

  // The output's concrete shape, for the cotangent.
  const probe = new Graph('probe');
  probe.output(build(declare(probe), probe), 'probe.y');
  // ORT's fusions (QuickGelu, Gelu, LayerNorm...) have float32 kernels only: float64 graphs run unfused.
  const sessionOptions = { threads: 1, optimization: type === 'float64' ? 'basic' : 'all' } as const;
  const probeSession = await Session.fromGraph(probe, sessionOptions);
  const yDims = [...(await probeSession.run(feeds()))['probe.y']!.dims];
  await probeSession.dispose();
  const cotangent = Arr.from(Array.from({ length: yDims.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1));

  const g = new Graph('gradcheck');
  const x = declare(g);
  const y = build(x, g);
  const r = g.input('cotangent', type, y.shape);
  const loss = op.reduceSum(op.mul(y, r), y.shape.map((_, i) => i), false);
  g.output(loss, 'loss');
  const wrt = Object.keys(inputs).filter((k) => !inputs[k]!.type && !inputs[k]!.frozen);
  const grads = gradients(loss, wrt.map((k) => x[k]!));
  grads.forEach((gr, i) => {
    assert.ok(gr, `${name}: no gradient for ${wrt[i]}`);
    g.output(gr, `grad.${wrt[i]}`);
  });
  const session = await Session.fromGraph(g, sessionOptions);
  const run = async () => (await session.run({ ...feeds(), cotangent: new ort.Tensor(type, cotangent, yDims) }));
  try {
    const analytic = await run();
    let worst = 0;
    for (const key of wrt) {
      const a = analytic[`grad.${key}`]!;
      assert.deepEqual([...a.dims], inputs[key]!.dims, `${name}: gradient shape of ${key}`);
      const an = a.data as Float64Array;
      const scale = Math.max(1, ...Array.from(an, Math.abs));
      const data = values[key] as Float64Array;
      for (let i = 0; i < data.length; i++) {
        const keep = data[i]!;
        data[i] = keep + h;
        const up = data[i]!; // the step as stored (float32 rounds it)
        const plus = Number((await run())['loss']!.data[0]);
        data[i] = keep - h;
        const down = data[i]!;
        const minus = Number((await run())['loss']!.data[0]);
        data[i] = keep;
        const fd = (plus - minus) / (up - down);
        worst = Math.max(worst, Math.abs(fd - an[i]!) / scale);
      }
    }
    assert.ok(worst <= tol, `${name}: gradient differs from finite differences by ${worst} (relative) > ${tol}`);
    return worst;
  } finally {
    await session.dispose();
  }
}
