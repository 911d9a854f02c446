// Gradient rules of products, norms, softmax, attention, convolution and pooling against central finite
// differences (issue #11): float64, except Conv, ConvTranspose and the pools, which ORT runs in float32 only —
// they are linear in each operand, so a large step keeps the float32 differences exact up to rounding.
import { test } from 'node:test';
import * as op from '../src/graph/ops/index.js';
import { gradCheck, type CheckedInput } from './helpers/gradcheck.js';

const t = (shape: (number | string)[], dims: number[], extra: Partial<CheckedInput> = {}): CheckedInput => ({ shape, dims, ...extra });
const linear = { type: 'float32', h: 0.5, tol: 2e-5 } as const;

test('matmul: a linear layer, batched, broadcast and rank-1 operands', async () => {
  const mm = (v: Record<string, op.Value>) => op.matmul(v['a']!, v['b']!);
  await gradCheck('[b,s,k]·[k,n]', { a: t(['b', 's', 4], [2, 3, 4]), b: t([4, 5], [4, 5]) }, mm);
  await gradCheck('[m,k]·[k,n]', { a: t([3, 4], [3, 4]), b: t([4, 2], [4, 2]) }, mm);
  await gradCheck('[b,h,s,d]·[b,h,d,t]', { a: t(['b', 2, 's', 3], [2, 2, 3, 3]), b: t(['b', 2, 3, 't'], [2, 2, 3, 4]) }, mm);
  await gradCheck('[2,s,k]·[1,k,n] broadcast', { a: t([2, 's', 4], [2, 3, 4]), b: t([1, 4, 2], [1, 4, 2]) }, mm);
  await gradCheck('[k]·[b,k,n]', { a: t([4], [4]), b: t(['b', 4, 3], [2, 4, 3]) }, mm);
  await gradCheck('[b,m,k]·[k]', { a: t(['b', 3, 4], [2, 3, 4]), b: t([4], [4]) }, mm);
  await gradCheck('[k]·[k]', { a: t([4], [4]), b: t([4], [4]) }, mm);
  await gradCheck('a frozen weight passes the gradient on', { a: t(['b', 's', 4], [2, 3, 4]), b: t([4, 5], [4, 5], { frozen: true }) }, mm);
});

test('gemm with every transpose flag, alpha, beta and a broadcast bias', async () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      await gradCheck(`gemm transA=${transA} transB=${transB}`, {
        a: t(transA ? [4, 3] : [3, 4], transA ? [4, 3] : [3, 4]),
        b: t(transB ? [2, 4] : [4, 2], transB ? [2, 4] : [4, 2]),
        c: t([2], [2]),
      }, (v) => op.gemm(v['a']!, v['b']!, v['c']!, { transA, transB, alpha: 0.7, beta: 1.3 }));
    }
  }
});

test('softmax and log-softmax', async () => {
  await gradCheck('softmax last axis', { x: t(['b', 3, 4], [2, 3, 4]) }, (v) => op.softmax(v['x']!, -1));
  await gradCheck('softmax axis 1', { x: t(['b', 3, 4], [2, 3, 4]) }, (v) => op.softmax(v['x']!, 1));
  await gradCheck('logSoftmax', { x: t(['b', 3, 4], [2, 3, 4]) }, (v) => op.logSoftmax(v['x']!, -1));
});

test('layer norm (with and without bias, over two dims) and RMS norm', async () => {
  const x = t(['b', 's', 4], [2, 3, 4]);
  await gradCheck('layerNorm', { x, w: t([4], [4]), c: t([4], [4]) }, (v) => op.layerNorm(v['x']!, v['w']!, v['c']!, 1e-5));
  await gradCheck('layerNorm without bias', { x, w: t([4], [4]) }, (v) => op.layerNorm(v['x']!, v['w']!, null, 1e-5));
  await gradCheck('layerNorm over two dims', { x, w: t([3, 4], [3, 4]), c: t([3, 4], [3, 4]) }, (v) => op.layerNorm(v['x']!, v['w']!, v['c']!, 1e-3));
  await gradCheck('rmsNorm', { x, w: t([4], [4]) }, (v) => op.rmsNorm(v['x']!, v['w']!, 1e-6));
});

test('attention with an additive mask and a boolean one, rotary embedding', async () => {
  const qkv = t(['b', 2, 's', 4], [1, 2, 3, 4]);
  const mask = t([1, 1, 3, 3], [1, 1, 3, 3], { frozen: true, values: [0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0] });
  await gradCheck('attention (mask)', { q: qkv, k: qkv, v: qkv, m: mask }, (v) => op.attention(v['q']!, v['k']!, v['v']!, { mask: v['m']! }));
  await gradCheck('attention (allowed)', { q: qkv, k: qkv, v: qkv, m: t([3, 3], [3, 3], { type: 'bool', values: [1, 0, 0, 1, 1, 0, 1, 1, 1] }) },
    (v) => op.attention(v['q']!, v['k']!, v['v']!, { allowed: v['m']! }));
  // Positions are integers: cos/sin tables get no gradient, q does.
  await gradCheck('rotary', { q: qkv, pos: t(['b', 's'], [1, 3], { type: 'int64', values: [0, 1, 5] }) }, (v) => {
    const angles = op.mul(op.unsqueeze(op.cast(v['pos']!, 'float64'), [-1]), v['q']!.graph.constant('float64', [2], [1, 0.1]));
    const full = op.unsqueeze(op.concat([angles, angles], -1), [1]);
    return op.rotary(v['q']!, op.cos(full), op.sin(full));
  });
});

test('conv: patch embedding, padding, dilation, groups, 1-D grouped kernel-1 (float32)', async () => {
  const conv = (opts: op.ConvOptions) => (v: Record<string, op.Value>) => op.conv(v['x']!, v['w']!, v['c'] ?? null, opts);
  await gradCheck('patch embedding', { x: t(['b', 3, 4, 4], [2, 3, 4, 4]), w: t([5, 3, 2, 2], [5, 3, 2, 2]) }, conv({ strides: [2, 2] }), linear);
  await gradCheck('stride 2, padding, leftover row', { x: t([1, 2, 5, 6], [1, 2, 5, 6]), w: t([3, 2, 3, 3], [3, 2, 3, 3]), c: t([3], [3]) },
    conv({ strides: [2, 2], pads: [1, 0, 1, 1] }), linear);
  await gradCheck('dilation', { x: t([1, 2, 6, 6], [1, 2, 6, 6]), w: t([2, 2, 2, 2], [2, 2, 2, 2]) }, conv({ dilations: [2, 2] }), linear);
  await gradCheck('depthwise 3×3 (ConvNeXt)', { x: t(['b', 4, 5, 5], [2, 4, 5, 5]), w: t([4, 1, 3, 3], [4, 1, 3, 3]), c: t([4], [4]) },
    conv({ pads: [1, 1, 1, 1], group: 4 }), linear);
  await gradCheck('1-D grouped kernel 1 (LaVIN adapter)', { x: t(['b', 4, 'l'], [2, 4, 3]), w: t([6, 2, 1], [6, 2, 1]), c: t([6], [6]) }, conv({ group: 2 }), linear);
});

test('average pools and bilinear resampling (float32)', async () => {
  const x = t([1, 2, 5, 5], [1, 2, 5, 5]);
  await gradCheck('averagePool', { x }, (v) => op.averagePool(v['x']!, { kernel: [2, 2] }), linear);
  await gradCheck('averagePool padded, padding excluded', { x }, (v) => op.averagePool(v['x']!, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), linear);
  await gradCheck('averagePool padded, padding counted', { x }, (v) => op.averagePool(v['x']!, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true }), linear);
  await gradCheck('globalAveragePool', { x: t(['b', 2, 3, 3], [2, 2, 3, 3]) }, (v) => op.globalAveragePool(v['x']!), linear);
  await gradCheck('interpolateBilinearAlignCorners', { x: t([1, 2, 3, 4], [1, 2, 3, 4]) }, (v) => op.interpolateBilinearAlignCorners(v['x']!, [5, 3]), linear);
});
