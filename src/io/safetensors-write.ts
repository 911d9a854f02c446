import { open, rename, rm } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { DTYPE_SIZE, type DType } from './dtype.js';

export interface TensorToWrite {
  dtype: DType;
  shape: readonly number[];
  /** The bytes, or a function producing them when the tensor is written (so that a file's tensors need not all be in memory). */
  data: ArrayBufferView | (() => ArrayBufferView);
}

/**
 * Writes a safetensors file (header: u64 LE length + JSON, padded with spaces to 8 bytes, then the data in the
 * order given). Written under a temporary name and renamed, so a reader never sees half a file.
 */
export async function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const expected = byteLength(t);
    if (ArrayBuffer.isView(t.data)) checkLength(name, t, t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  headerBytes.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, 'w').catch((err: NodeJS.ErrnoException) => {
    throw new InputError(`cannot write ${path}: ${err.code ?? String(err)}`);
  });
  try {
    await file.write(prefix);
    await file.write(headerBytes);
    for (const [name, t] of Object.entries(tensors)) {
      const data = checkLength(name, t, ArrayBuffer.isView(t.data) ? t.data : t.data());
      await file.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  await rename(tmp, path);
}

const byteLength = (t: TensorToWrite) => t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];

function checkLength(name: string, t: TensorToWrite, data: ArrayBufferView): ArrayBufferView {
  const expected = byteLength(t);
  if (data.byteLength !== expected) throw new RangeError(`tensor '${name}' ${t.dtype}[${t.shape}] needs ${expected} bytes, got ${data.byteLength}`);
  return data;
}
