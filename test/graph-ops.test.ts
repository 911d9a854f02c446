// Every op of the graph builder against a plain TypeScript reference on fresh random inputs (issue #2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as op from '../src/graph/ops/index.js';
import { GraphError } from '../src/graph/ir.js';
import { dequantizeBlockwise, quantizeBlockwise, quantizedWeight } from '../src/graph/quantize.js';
import * as ref from './helpers/reference.js';
import { assertClose, assertDeclaredShape, runGraph } from './helpers/graph.js';

const seed = (() => { let s = Date.now() % 100000; return () => ++s; })();
const f32 = (t: ref.Tensor) => ({ data: t.data, shape: t.shape });
const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function checkUnary(name: string, build: (x: op.Value) => op.Value, f: (x: number) => number, scale = 3) {
  const x = ref.random([2, 3, 5], seed(), scale);
  const [[out]] = await runGraph({ x: { shape: ['b', 3, 5] } }, (_, v) => build(v['x']!), [{ x: f32(x) }]);
  assertClose(out!, ref.elementwise([x], f), 1e-5, name);
}

test('unary element-wise ops and activations', async () => {
  await checkUnary('neg', op.neg, (x) => -x);
  await checkUnary('abs', op.abs, Math.abs);
  await checkUnary('sqrt', (v) => op.sqrt(op.abs(v)), (x) => Math.sqrt(Math.abs(x)));
  await checkUnary('reciprocal', (v) => op.reciprocal(op.add(op.abs(v), 0.5)), (x) => 1 / (Math.abs(x) + 0.5));
  await checkUnary('exp', op.exp, Math.exp);
  await checkUnary('erf', op.erf, ref.erf);
  await checkUnary('tanh', op.tanh, Math.tanh);
  await checkUnary('sigmoid', op.sigmoid, (x) => 1 / (1 + Math.exp(-x)));
  await checkUnary('silu', op.silu, (x) => x / (1 + Math.exp(-x)));
  await checkUnary('gelu', op.gelu, (x) => 0.5 * x * (1 + ref.erf(x / Math.SQRT2)), 6);
  await checkUnary('quickGelu', op.quickGelu, (x) => x / (1 + Math.exp(-1.702 * x)), 6);
  await checkUnary('clip', (v) => op.clip(v, -1, 0.5), (x) => Math.min(Math.max(x, -1), 0.5));
});

test('binary ops broadcast over symbolic and known dims', async () => {
  const cases: [string, (a: op.Value, b: op.Value) => op.Value, (a: number, b: number) => number][] = [
    ['add', op.add, (a, b) => a + b], ['sub', op.sub, (a, b) => a - b], ['mul', op.mul, (a, b) => a * b],
    ['div', op.div, (a, b) => a / b], ['max', op.maximum, Math.max], ['min', op.minimum, Math.min],
    ['pow', (a, b) => op.pow(op.abs(a), b), (a, b) => Math.abs(a) ** b],
  ];
  for (const [name, build, f] of cases) {
    const a = ref.random([2, 4, 3], seed());
    const b = ref.random([4, 1], seed());
    if (name === 'div') for (let i = 0; i < b.data.length; i++) b.data[i] = b.data[i]! + (b.data[i]! < 0 ? -0.5 : 0.5);
    const [[out]] = await runGraph({ a: { shape: ['batch', 4, 3] }, b: { shape: [4, 1] } }, (_, v) => build(v['a']!, v['b']!), [{ a: f32(a), b: f32(b) }]);
    assertDeclaredShape(out!.declared, out!.shape);
    assertClose(out!, ref.elementwise([a, b], f), 1e-5, name);
  }
});

test('comparisons, where and cast', async () => {
  const a = ref.random([3, 4], seed());
  const b = ref.random([1, 4], seed());
  const [[sel, lt, eq]] = await runGraph({ a: { shape: [3, 4] }, b: { shape: [1, 4] } }, (_, v) => {
    const less = op.less(v['a']!, v['b']!);
    return [op.where(less, v['a']!, op.mul(v['b']!, 10)), op.cast(less, 'float32'), op.cast(op.equal(op.greater(v['a']!, 0), op.greater(v['b']!, 0)), 'int32')];
  }, [{ a: f32(a), b: f32(b) }]);
  assertClose(sel!, ref.elementwise([a, b], (x, y) => (x < y ? x : y * 10)), 1e-6, 'where');
  assertClose(lt!, ref.elementwise([a, b], (x, y) => (x < y ? 1 : 0)), 0, 'less');
  assert.deepEqual(Array.from(eq!.data as unknown as Int32Array), Array.from(ref.elementwise([a, b], (x, y) => (x > 0 === y > 0 ? 1 : 0)).data));
});

test('matmul: batched, broadcast, symbolic batch, and gemm with transB', async () => {
  const a = ref.random([2, 3, 5, 8], seed());
  const b = ref.random([3, 8, 7], seed());
  const [[r1], [r2]] = await runGraph({ a: { shape: ['n', 3, 's', 8] }, b: { shape: [3, 8, 7] } }, (_, v) => op.matmul(v['a']!, v['b']!), [
    { a: f32(a), b: f32(b) },
    { a: f32(ref.random([1, 3, 2, 8], 5)), b: f32(b) },
  ]);
  assertDeclaredShape(r1!.declared, r1!.shape);
  assertClose(r1!, ref.matmul(a, b), 1e-5, 'matmul');
  assert.deepEqual(r2!.shape, [1, 3, 2, 7]);
  assertClose(r2!, ref.matmul(ref.random([1, 3, 2, 8], 5), b), 1e-5, 'matmul (second shape)');

  const x = ref.random([4, 6], seed());
  const w = ref.random([5, 6], seed());
  const c = ref.random([5], seed());
  const [[g]] = await runGraph({ x: { shape: ['m', 6] } }, (gr, v) => op.gemm(v['x']!, gr.weight('w', 'float32', [5, 6], bytes(w.data)), gr.weight('c', 'float32', [5], bytes(c.data)), { transB: true }), [{ x: f32(x) }]);
  const expected = ref.elementwise([ref.matmul(x, ref.transpose(w, [1, 0])), { data: c.data, shape: [5] }], (p, q) => p + q);
  assertClose(g!, expected, 1e-5, 'gemm');
});

test('MatMulNBits (int4 and int8, block-wise) equals matmul with the dequantised weight', async () => {
  for (const bits of [4, 8] as const) {
    const [n, k] = [24, 64];
    const w = ref.random([n, k], seed());
    const q = quantizeBlockwise(w.data, n, k, bits, 32);
    const deq = { data: dequantizeBlockwise(q), shape: [n, k] };
    // The quantisation itself is close to the weight: |w - deq| ≤ scale / 2 per block.
    for (let i = 0; i < w.data.length; i++) assert.ok(Math.abs(w.data[i]! - deq.data[i]!) <= q.scales[Math.floor(i / 32)]! / 2 + 1e-7);
    const x = ref.random([3, k], seed());
    const [[out]] = await runGraph({ x: { shape: ['m', k] } }, (g, v) => op.matmulNBits(v['x']!, quantizedWeight(g, 'w', q), 0), [{ x: f32(x) }]);
    assertClose(out!, ref.matmul(x, ref.transpose(deq, [1, 0])), 1e-5, `MatMulNBits ${bits}-bit`);
  }
});

test('reshape (with symbolic -1), transpose, unsqueeze, squeeze, expand, shape', async () => {
  const x = ref.random([2, 3, 4], seed());
  const [[r, t, u, s, e, sh]] = await runGraph({ x: { shape: ['b', 3, 4] } }, (_, v) => {
    const flat = op.reshape(v['x']!, [-1, 4]);
    assert.deepEqual(flat.shape, ['3*b', 4]);
    return [flat, op.transpose(v['x']!, [2, 0, 1]), op.unsqueeze(v['x']!, [0, -1]), op.squeeze(op.unsqueeze(v['x']!, [1]), [1]),
      op.expand(op.reshape(v['x']!, [0, 0, 4, 1]), [1, 1, 4, 5]), op.shapeOf(v['x']!)];
  }, [{ x: f32(x) }]);
  assert.deepEqual(r!.shape, [6, 4]);
  assertClose(r!, { data: x.data, shape: [6, 4] }, 0, 'reshape');
  assertClose(t!, ref.transpose(x, [2, 0, 1]), 0, 'transpose');
  assertClose(u!, { data: x.data, shape: [1, 2, 3, 4, 1] }, 0, 'unsqueeze');
  assertClose(s!, x, 0, 'squeeze');
  assertClose(e!, ref.elementwise([{ data: x.data, shape: [2, 3, 4, 1] }, { data: new Float32Array(5), shape: [5] }], (p) => p), 0, 'expand');
  assert.deepEqual(Array.from(sh!.data as unknown as BigInt64Array, Number), [2, 3, 4]);
});

test('concat, slice (constant, tensor bounds, steps), split', async () => {
  const a = ref.random([2, 3, 4], seed());
  const b = ref.random([2, 5, 4], seed());
  const [[c, s1, s2, p0, p1]] = await runGraph({ a: { shape: ['n', 3, 4] }, b: { shape: ['n', 'k', 4] }, start: { type: 'int64', shape: [1] } }, (g, v) => {
    const cat = op.concat([v['a']!, v['b']!], 1);
    assert.deepEqual(cat.shape, ['n', '3+k', 4]);
    const dyn = op.slice(v['b']!, [1], v['start']!, g.constant('int64', [1], [4n]));
    return [cat, op.slice(v['a']!, [1, 2], [1, 0], [3, undefined], [1, 2]), dyn, ...op.split(v['b']!, [1, 3], 2)];
  }, [{ a: f32(a), b: f32(b), start: { data: BigInt64Array.of(2n), shape: [1], type: 'int64' } }]);
  const pick = (t: ref.Tensor, shape: number[], f: (idx: number[]) => number[]) => {
    const data = new Float32Array(ref.size(shape));
    const st = ref.strides(t.shape);
    for (let i = 0; i < data.length; i++) data[i] = t.data[f(ref.unravel(i, shape)).reduce((s, d, j) => s + d * st[j]!, 0)]!;
    return { data, shape };
  };
  assertClose(c!, pick({ data: new Float32Array([...Array.from({ length: 2 }, (_, n) => [...a.data.subarray(n * 12, n * 12 + 12), ...b.data.subarray(n * 20, n * 20 + 20)]).flat()]), shape: [2, 8, 4] }, [2, 8, 4], (i) => i), 0, 'concat');
  assertClose(s1!, pick(a, [2, 2, 2], ([n, i, j]) => [n!, i! + 1, j! * 2]), 0, 'slice');
  assertClose(s2!, pick(b, [2, 2, 4], ([n, i, j]) => [n!, i! + 2, j!]), 0, 'slice with tensor start');
  assertClose(p0!, pick(b, [2, 5, 1], ([n, i]) => [n!, i!, 0]), 0, 'split 0');
  assertClose(p1!, pick(b, [2, 5, 3], ([n, i, j]) => [n!, i!, j! + 1]), 0, 'split 1');
});

test('gather (embedding lookup) and scatterND', async () => {
  const table = ref.random([10, 6], seed());
  const ids = BigInt64Array.of(3n, 0n, 9n, 3n, 7n, 1n);
  const update = ref.random([2, 6], seed());
  const [[gth, sct]] = await runGraph({ ids: { type: 'int64', shape: ['b', 's'] }, u: { shape: [2, 6] } }, (g, v) => {
    const t = g.weight('table', 'float32', [10, 6], bytes(table.data));
    return [op.gather(t, v['ids']!), op.scatterND(t, g.constant('int64', [2, 1], [4n, 8n]), v['u']!)];
  }, [{ ids: { data: ids, shape: [2, 3], type: 'int64' }, u: f32(update) }]);
  const expected = new Float32Array(36);
  ids.forEach((id, i) => expected.set(table.data.subarray(Number(id) * 6, Number(id) * 6 + 6), i * 6));
  assertClose(gth!, { data: expected, shape: [2, 3, 6] }, 0, 'gather');
  const scattered = Float32Array.from(table.data);
  scattered.set(update.data.subarray(0, 6), 24);
  scattered.set(update.data.subarray(6), 48);
  assertClose(sct!, { data: scattered, shape: [10, 6] }, 0, 'scatterND');
});

test('reductions and argMax', async () => {
  const x = ref.random([3, 7], seed());
  const [[mean, sum, max, am]] = await runGraph({ x: { shape: ['r', 7] } }, (_, v) => [op.reduceMean(v['x']!, [-1]), op.reduceSum(v['x']!, [0], false), op.reduceMax(v['x']!, [1]), op.argMax(v['x']!, -1)], [{ x: f32(x) }]);
  const rowsOf = (f: (r: number[]) => number) => Array.from({ length: 3 }, (_, i) => f(Array.from(x.data.subarray(i * 7, i * 7 + 7))));
  assertClose(mean!, { data: Float32Array.from(rowsOf((r) => r.reduce((a, b) => a + b) / 7)), shape: [3, 1] }, 1e-6, 'mean');
  assertClose(sum!, { data: Float32Array.from({ length: 7 }, (_, j) => x.data[j]! + x.data[7 + j]! + x.data[14 + j]!), shape: [7] }, 1e-6, 'sum');
  assertClose(max!, { data: Float32Array.from(rowsOf((r) => Math.max(...r))), shape: [3, 1] }, 0, 'max');
  assert.deepEqual(Array.from(am!.data as unknown as BigInt64Array, Number), rowsOf((r) => r.indexOf(Math.max(...r))));
});

test('softmax, layer norm, RMS norm', async () => {
  const x = ref.random([2, 5, 16], seed(), 4);
  const gamma = ref.random([16], seed());
  const beta = ref.random([16], seed());
  const [[sm, ln, rms]] = await runGraph({ x: { shape: ['b', 's', 16] } }, (g, v) => {
    const gw = g.weight('gamma', 'float32', [16], bytes(gamma.data));
    return [op.softmax(v['x']!, -1), op.layerNorm(v['x']!, gw, g.weight('beta', 'float32', [16], bytes(beta.data)), 1e-5), op.rmsNorm(v['x']!, gw, 1e-6)];
  }, [{ x: f32(x) }]);
  assertClose(sm!, ref.rows(x, ref.softmaxRow), 1e-6, 'softmax');
  assertClose(ln!, ref.rows(x, (r) => {
    const mean = r.reduce((a, b) => a + b) / r.length;
    const v = r.reduce((a, b) => a + (b - mean) ** 2, 0) / r.length;
    return Array.from(r, (t, i) => ((t - mean) / Math.sqrt(v + 1e-5)) * gamma.data[i]! + beta.data[i]!);
  }), 1e-5, 'layerNorm');
  assertClose(rms!, ref.rows(x, (r) => {
    const ms = r.reduce((a, b) => a + b * b, 0) / r.length;
    return Array.from(r, (t, i) => (t / Math.sqrt(ms + 1e-6)) * gamma.data[i]!);
  }), 1e-5, 'rmsNorm');
});

test('conv: 1×1, depthwise 7×7 padded, strided patch embedding', async () => {
  const x = ref.random([2, 8, 12, 12], seed());
  const cases = [
    { name: '1x1', w: ref.random([6, 8, 1, 1], seed()), stride: 1, pads: [0, 0, 0, 0], group: 1 },
    { name: 'depthwise 7x7', w: ref.random([8, 1, 7, 7], seed()), stride: 1, pads: [3, 3, 3, 3], group: 8 },
    { name: 'patch 4x4/4', w: ref.random([5, 8, 4, 4], seed()), stride: 4, pads: [0, 0, 0, 0], group: 1 },
  ];
  for (const c of cases) {
    const bias = ref.random([c.w.shape[0]!], seed());
    const [[out]] = await runGraph({ x: { shape: ['n', 8, 12, 12] } }, (g, v) => op.conv(v['x']!, g.weight('w', 'float32', c.w.shape, bytes(c.w.data)), g.weight('b', 'float32', [c.w.shape[0]!], bytes(bias.data)), { strides: [c.stride, c.stride], pads: c.pads, group: c.group }), [{ x: f32(x) }]);
    assertDeclaredShape(out!.declared, out!.shape);
    assertClose(out!, ref.conv2d(x, c.w, bias.data, c.stride, c.pads, c.group), 1e-5, c.name);
  }
});

test('pooling: average, max, global average', async () => {
  const x = ref.random([1, 3, 8, 8], seed());
  const [[avg, max, gap]] = await runGraph({ x: { shape: [1, 3, 8, 8] } }, (_, v) => [op.averagePool(v['x']!, { kernel: [2, 2] }), op.maxPool(v['x']!, { kernel: [2, 2] }), op.globalAveragePool(v['x']!)], [{ x: f32(x) }]);
  const pool = (f: (xs: number[]) => number) => {
    const out = new Float32Array(3 * 16);
    for (let c = 0; c < 3; c++) for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      const xs = [0, 1].flatMap((dy) => [0, 1].map((dx) => x.data[c * 64 + (2 * i + dy) * 8 + 2 * j + dx]!));
      out[c * 16 + i * 4 + j] = f(xs);
    }
    return { data: out, shape: [1, 3, 4, 4] };
  };
  assertClose(avg!, pool((xs) => xs.reduce((a, b) => a + b) / 4), 1e-6, 'avg');
  assertClose(max!, pool((xs) => Math.max(...xs)), 0, 'max');
  assertClose(gap!, { data: Float32Array.from({ length: 3 }, (_, c) => x.data.subarray(c * 64, c * 64 + 64).reduce((a, b) => a + b) / 64), shape: [1, 3, 1, 1] }, 1e-6, 'global avg');
});

// The reference's antialiased bicubic (a = -0.5) agreed with torch 1.13's F.interpolate(antialias=True) to 2e-7.
test('resize: bilinear align-corners, bicubic, antialiased bicubic downsampling', async () => {
  const x = ref.random([1, 2, 9, 7], seed());
  const cases = [
    { name: 'bilinear align_corners up', size: [16, 12], opts: { mode: 'linear', coordinates: 'align_corners' } as const, filter: ref.bilinearFilter },
    { name: 'bilinear align_corners down', size: [4, 5], opts: { mode: 'linear', coordinates: 'align_corners' } as const, filter: ref.bilinearFilter },
    { name: 'bicubic half_pixel up', size: [13, 11], opts: { mode: 'cubic', coordinates: 'half_pixel', cubicCoeffA: -0.75 } as const, filter: ref.cubicFilter(-0.75) },
    { name: 'bicubic antialias down', size: [4, 3], opts: { mode: 'cubic', coordinates: 'half_pixel', antialias: true, cubicCoeffA: -0.5 } as const, filter: ref.cubicFilter(-0.5) },
  ];
  for (const c of cases) {
    const [[out]] = await runGraph({ x: { shape: ['n', 2, 9, 7] } }, (_, v) => op.resize(v['x']!, c.size, c.opts), [{ x: f32(x) }]);
    const mode = c.opts.coordinates === 'align_corners' ? 'align_corners' : 'half_pixel';
    assertClose(out!, ref.resize2d(x, c.size[0]!, c.size[1]!, c.filter, mode, 'antialias' in c.opts), 1e-5, c.name);
  }
});

test('rotary embedding (rotate-half) and attention with causal and arbitrary masks', async () => {
  const [b, h, s, d] = [2, 2, 5, 8];
  const q = ref.random([b, h, s, d], seed());
  const k = ref.random([b, h, s, d], seed());
  const v = ref.random([b, h, s, d], seed());
  const cos = ref.random([1, 1, s, d], seed());
  const sin = ref.random([1, 1, s, d], seed());
  const mask = new Float32Array(b * s * s);
  for (let n = 0; n < b; n++) for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) mask[n * s * s + i * s + j] = j > i || (n === 1 && j === 0 && i > 0) ? -1e9 : 0;
  const [[rot, att]] = await runGraph(
    { q: { shape: ['b', h, 's', d] }, k: { shape: ['b', h, 's', d] }, v: { shape: ['b', h, 's', d] }, cos: { shape: [1, 1, 's', d] }, sin: { shape: [1, 1, 's', d] }, mask: { shape: ['b', 1, 's', 's'] } },
    (_, x) => [op.rotary(x['q']!, x['cos']!, x['sin']!), op.attention(x['q']!, x['k']!, x['v']!, { mask: x['mask']! })],
    [{ q: f32(q), k: f32(k), v: f32(v), cos: f32(cos), sin: f32(sin), mask: { data: mask, shape: [b, 1, s, s] } }],
  );
  const rotated = ref.elementwise([q, cos, sin, { data: rotateHalfRef(q), shape: q.shape }], (x, c, sn, rh) => x * c + rh * sn);
  assertClose(rot!, rotated, 1e-5, 'rotary');
  const scores = ref.elementwise([ref.matmul(q, ref.transpose(k, [0, 1, 3, 2])), { data: mask, shape: [b, 1, s, s] }], (x, m) => x / Math.sqrt(d) + m);
  assertClose(att!, ref.matmul(ref.rows(scores, ref.softmaxRow), v), 1e-5, 'attention');
});

function rotateHalfRef(x: ref.Tensor): Float32Array {
  const d = x.shape.at(-1)!;
  const out = new Float32Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) for (let i = 0; i < d; i++) {
    out[r * d + i] = i < d / 2 ? -x.data[r * d + i + d / 2]! : x.data[r * d + i - d / 2]!;
  }
  return out;
}

test('shape errors name the op, the tensors and their shapes', async () => {
  await assert.rejects(runGraph({ a: { shape: [2, 3] }, b: { shape: [4, 5] } }, (_, v) => op.matmul(v['a']!, v['b']!), []),
    (e: Error) => e instanceof GraphError && /MatMul/.test(e.message) && /'a' float32\[2, 3\]/.test(e.message) && /'b' float32\[4, 5\]/.test(e.message));
  await assert.rejects(runGraph({ a: { shape: ['n', 3] }, b: { shape: [4] } }, (_, v) => op.add(v['a']!, v['b']!), []),
    (e: Error) => e instanceof GraphError && /Add/.test(e.message) && /\[n, 3\]/.test(e.message));
  await assert.rejects(runGraph({ a: { shape: [6] } }, (_, v) => op.reshape(v['a']!, [4, 2]), []), (e: Error) => /Reshape/.test(e.message));
});
