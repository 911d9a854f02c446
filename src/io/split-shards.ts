import { InputError } from '../errors.js';
import { type TensorInfo, type TensorSource, missingTensor, openCheckpointFile, readAsFloat32 } from './checkpoint.js';
import { DTYPE_SIZE } from './dtype.js';

/** How a tensor is divided among model-parallel shards: concatenated along a dimension, or whole in every shard. */
export type ShardSplit = { dim: number } | 'replicated';

/**
 * Model-parallel shards (every file holds every tensor name, each with a slice of the split ones) seen as one
 * checkpoint. `splitOf` says how each tensor was divided; undefined refuses the tensor. A split tensor is
 * read shard by shard into its merged buffer, so one tensor's slices are the most held at once; a replicated
 * one is read from the first shard.
 */
class SplitShards implements TensorSource {
  private readonly merged = new Map<string, { info: TensorInfo; split: ShardSplit }>();

  constructor(
    private readonly where: string,
    private readonly shards: readonly TensorSource[],
    private readonly splitOf: (name: string) => ShardSplit | undefined,
  ) {
    for (const first of shards[0]!.list()) this.merged.set(first.name, this.mergeInfo(first));
    for (const [i, shard] of shards.entries()) {
      const extra = shard.list().find((t) => !this.merged.has(t.name));
      if (extra) throw new InputError(`${where}: shard ${i} holds '${extra.name}', which shard 0 does not`);
    }
  }

  get format(): TensorSource['format'] {
    return this.shards[0]!.format;
  }

  list(): TensorInfo[] {
    return [...this.merged.values()].map((m) => m.info);
  }

  has(name: string): boolean {
    return this.merged.has(name);
  }

  info(name: string): TensorInfo {
    return this.entry(name).info;
  }

  async read(name: string): Promise<Uint8Array> {
    const { info, split } = this.entry(name);
    if (split === 'replicated') return this.shards[0]!.read(name);
    // Row-major: the merged tensor is `outer` runs, each the concatenation of every shard's run along `dim`.
    const outer = info.shape.slice(0, split.dim).reduce((a, b) => a * b, 1);
    const total = info.shape.slice(split.dim).reduce((a, b) => a * b, 1) * DTYPE_SIZE[info.dtype];
    const run = total / this.shards.length;
    const out = new Uint8Array(outer * total);
    for (const [i, shard] of this.shards.entries()) {
      const part = await shard.read(name);
      for (let o = 0; o < outer; o++) out.set(part.subarray(o * run, (o + 1) * run), o * total + i * run);
    }
    return out;
  }

  readFloat32(name: string): Promise<Float32Array> {
    return readAsFloat32(this, name);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }

  private entry(name: string) {
    const m = this.merged.get(name);
    if (!m) throw missingTensor(name, this.where);
    return m;
  }

  /** The merged tensor's info, after checking that every shard holds a slice of the same dtype and shape. */
  private mergeInfo(first: TensorInfo): { info: TensorInfo; split: ShardSplit } {
    const { name, dtype, shape } = first;
    const split = this.splitOf(name);
    if (!split) throw new InputError(`${this.where}: tensor '${name}' [${shape.join(', ')}] is split across shards in a way egret does not know`);
    if (split !== 'replicated' && !(split.dim >= 0 && split.dim < shape.length)) {
      throw new InputError(`${this.where}: tensor '${name}' [${shape.join(', ')}] has no dimension ${split.dim} to merge along`);
    }
    for (const [i, shard] of this.shards.entries()) {
      const t = shard.has(name) ? shard.info(name) : undefined;
      if (!t) throw new InputError(`${this.where}: tensor '${name}' is missing from shard ${i}`);
      if (t.dtype !== dtype || t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) {
        throw new InputError(`${this.where}: tensor '${name}' is ${t.dtype} [${t.shape.join(', ')}] in shard ${i} but ${dtype} [${shape.join(', ')}] in shard 0`);
      }
    }
    if (split === 'replicated') return { info: first, split };
    const merged = shape.map((d, j) => (j === split.dim ? d * this.shards.length : d));
    return { info: { name, dtype, shape: merged }, split };
  }
}

/** Opens model-parallel shard files, in order, as one TensorSource (see SplitShards). */
export async function openSplitShards(where: string, paths: readonly string[], splitOf: (name: string) => ShardSplit | undefined): Promise<TensorSource> {
  const shards: TensorSource[] = [];
  try {
    for (const path of paths) shards.push(await openCheckpointFile(path));
    return new SplitShards(where, shards, splitOf);
  } catch (err) {
    await Promise.all(shards.map((s) => s.close()));
    throw err;
  }
}
