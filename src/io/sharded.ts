import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { type TensorInfo, type TensorSource, missingTensor, openCheckpointFile, readAsFloat32 } from './checkpoint.js';

/** An index json lists tensor names and shard file names: a few MB at most. */
const MAX_INDEX_BYTES = 64 << 20;

/**
 * The shards of a sharded checkpoint, through its index json (`model.safetensors.index.json`,
 * `pytorch_model.bin.index.json`: {"metadata": {...}, "weight_map": {tensor name: shard file name}},
 * as transformers' save_pretrained writes it). The index is authoritative: every tensor it names must be
 * in its shard; tensors of a shard that the index does not name are not listed.
 */
class ShardedCheckpoint implements TensorSource {
  constructor(
    readonly format: TensorSource['format'],
    private readonly indexPath: string,
    private readonly shardOf: Map<string, TensorSource>,
    private readonly shards: TensorSource[],
  ) {}

  list(): TensorInfo[] {
    return [...this.shardOf].map(([name, shard]) => shard.info(name));
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  async read(name: string): Promise<Uint8Array> {
    return this.shard(name).read(name);
  }

  readFloat32(name: string): Promise<Float32Array> {
    return readAsFloat32(this, name);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.close()));
  }

  private shard(name: string): TensorSource {
    const shard = this.shardOf.get(name);
    if (!shard) throw missingTensor(name, this.indexPath);
    return shard;
  }
}

export async function openShardedIndex(indexPath: string): Promise<TensorSource> {
  const weightMap = await readWeightMap(indexPath);
  const opened = new Map<string, TensorSource>();
  try {
    const shardOf = new Map<string, TensorSource>();
    for (const [name, file] of weightMap) {
      let shard = opened.get(file);
      if (!shard) {
        shard = await openCheckpointFile(join(dirname(indexPath), file));
        opened.set(file, shard);
      }
      if (!shard.has(name)) throw new InputError(`${indexPath}: tensor '${name}' is not in its shard ${file}`);
      shardOf.set(name, shard);
    }
    const formats = new Set([...opened.values()].map((shard) => shard.format));
    if (formats.size !== 1) throw new InputError(`${indexPath}: shards of ${formats.size ? 'mixed formats' : 'no files'}`);
    return new ShardedCheckpoint([...formats][0]!, indexPath, shardOf, [...opened.values()]);
  } catch (err) {
    await Promise.all([...opened.values()].map((shard) => shard.close()));
    throw err;
  }
}

async function readWeightMap(indexPath: string): Promise<[string, string][]> {
  let text: string;
  try {
    if ((await stat(indexPath)).size > MAX_INDEX_BYTES) throw new InputError(`${indexPath}: index file is larger than ${MAX_INDEX_BYTES} bytes`);
    text = await readFile(indexPath, 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`cannot read ${indexPath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${indexPath}: not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) throw new InputError(`${indexPath}: no "weight_map" object`);
  const entries = Object.entries(weightMap);
  for (const [name, file] of entries) {
    // Shards sit beside the index: a path elsewhere is refused.
    if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.' || file === '') {
      throw new InputError(`${indexPath}: shard of '${name}' is ${JSON.stringify(file)}, not a file name beside the index`);
    }
  }
  return entries as [string, string][];
}
