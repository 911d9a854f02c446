/** Element types of graph tensors, named as onnxruntime-node names them. */
export type ElemType =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint32' | 'bool';

/** A dimension: a number, or a symbol bound when the graph runs (e.g. 'batch', 'seq'). */
export type Dim = number | string;
export type Shape = readonly Dim[];

/** TensorProto.DataType codes (onnx/onnx.proto). */
export const onnxTypeCode: Record<ElemType, number> = {
  float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9,
  float16: 10, float64: 11, uint32: 12, bfloat16: 16,
};

export const elemBytes: Record<ElemType, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, uint32: 4, bool: 1,
};

export const isFloat = (t: ElemType): boolean => t === 'float32' || t === 'float16' || t === 'bfloat16' || t === 'float64';

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Number of elements when every dim is known, otherwise undefined. */
export function knownSize(shape: Shape): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}
