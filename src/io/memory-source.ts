/** Tensors held in memory as a TensorSource: weights made by code (a fresh initialisation) read like a checkpoint's. */
import { DTYPE_SIZE } from './dtype.js';
import { missingTensor, readAsFloat32, type TensorInfo, type TensorSource } from './checkpoint.js';

export class MemorySource implements TensorSource {
  readonly format = 'memory';
  private readonly tensors = new Map<string, { shape: number[]; data: Float32Array }>();

  /** float32 tensors by name; `data` is kept, not copied. */
  constructor(tensors: Record<string, { shape: readonly number[]; data: Float32Array }>) {
    for (const [name, t] of Object.entries(tensors)) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (t.data.length !== count) throw new RangeError(`tensor '${name}' [${t.shape}] needs ${count} values, got ${t.data.length}`);
      this.tensors.set(name, { shape: [...t.shape], data: t.data });
    }
  }

  list(): TensorInfo[] {
    return [...this.tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: [...t.shape] }));
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw missingTensor(name, 'the tensors in memory');
    return { name, dtype: 'F32', shape: [...t.shape] };
  }

  async read(name: string): Promise<Uint8Array> {
    this.info(name);
    const { data } = this.tensors.get(name)!;
    return new Uint8Array(data.buffer, data.byteOffset, data.length * DTYPE_SIZE.F32);
  }

  readFloat32(name: string): Promise<Float32Array> {
    return readAsFloat32(this, name);
  }

  async close(): Promise<void> {}
}

/** Tensors as MemorySource takes them. */
export type MemoryTensors = Record<string, { shape: readonly number[]; data: Float32Array }>;

/** float32 copies of the tensors `names` of `source` (all of them when absent): to train, or to change in place. */
export async function copyTensors(source: TensorSource, names: readonly string[] = source.list().map((t) => t.name)): Promise<MemoryTensors> {
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, { shape: source.info(n).shape, data: Float32Array.from(await source.readFloat32(n)) }] as const)));
}

/** Every tensor of `source`, those named in `replacements` with its values instead (MemorySource checks their sizes). */
export async function replaceTensors(source: TensorSource, replacements: ReadonlyMap<string, Float32Array>): Promise<MemorySource> {
  const all: MemoryTensors = {};
  for (const t of source.list()) all[t.name] = { shape: t.shape, data: replacements.get(t.name) ?? await source.readFloat32(t.name) };
  return new MemorySource(all);
}

/** Every tensor of `source`, those in `names` at zero. */
export function zeroTensors(source: TensorSource, names: readonly string[]): Promise<MemorySource> {
  return replaceTensors(source, new Map(names.map((n) => [n, new Float32Array(source.info(n).shape.reduce((a, b) => a * b, 1))])));
}
