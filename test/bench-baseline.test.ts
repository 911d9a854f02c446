// The matmul suite's baseline model is written field by field; the onnx-proto package (protobufjs, a development
// dependency only) reads it as the ModelProto the suite describes, and ORT computes x · w with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto from 'onnx-proto';
import { baselineModel, baselineSession, randomFloats } from '../src/bench/matmul.js';
import { ort } from '../src/runtime/session.js';

const { onnx } = onnxProto;

test('the baseline MatMul model decodes with onnx-proto as the ModelProto it stands for, and computes x · w', async () => {
  const [m, k, n] = [2, 3, 4];
  const w = randomFloats(k * n, 5);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const tensorType = (dims: number[]) => ({ tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } });
  const expected = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'egret-bench-baseline',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'baseline',
      node: [{ name: 'mm', opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      initializer: [{ name: 'w', dataType: FLOAT, dims: [k, n], rawData: new Uint8Array(w.buffer) }],
      input: [{ name: 'x', type: tensorType([m, k]) }],
      output: [{ name: 'y', type: tensorType([m, n]) }],
    },
  });
  const asObject = (bytes: Uint8Array) => onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, bytes: Array, defaults: false });
  assert.deepEqual(asObject(baselineModel({ m, k, n }, w)), asObject(onnx.ModelProto.encode(expected).finish()));

  const x = randomFloats(m * k, 6);
  const session = await baselineSession({ m, k, n }, w, 1);
  const y = (await session.run({ x: new ort.Tensor('float32', x, [m, k]) }))['y']!.data as Float32Array;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += x[i * k + t]! * w[t * n + j]!;
      assert.ok(Math.abs(y[i * n + j]! - sum) < 1e-5, `y[${i}, ${j}] = ${y[i * n + j]}, expected ${sum}`);
    }
  }
  await session.release();
});
