import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { InputError } from '../errors.js';
import { type DType, isFloatDType, toFloat32 } from './dtype.js';
import { RandomAccessFile } from './file.js';
import { PytorchFile } from './pytorch.js';
import { SafetensorsFile } from './safetensors.js';
import { openShardedIndex } from './sharded.js';

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

/** Tensors of one file, a sharded set or a model directory. Listing reads no tensor data. */
export interface TensorSource {
  readonly format: 'safetensors' | 'pytorch' | 'memory';
  list(): TensorInfo[];
  has(name: string): boolean;
  /** InputError if absent, naming it. */
  info(name: string): TensorInfo;
  /** Raw little-endian bytes of that tensor only, contiguous in row-major order, read by offset. */
  read(name: string): Promise<Uint8Array>;
  /** The tensor converted to float32 from F16, BF16, F32 or F64. */
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Reads a tensor as float32 through `source.read`: the one implementation of `readFloat32`. */
export async function readAsFloat32(source: TensorSource, name: string): Promise<Float32Array> {
  const { dtype } = source.info(name);
  if (!isFloatDType(dtype)) throw new InputError(`tensor '${name}' is ${dtype}, not a floating-point tensor`);
  return toFloat32(dtype, await source.read(name));
}

/** InputError for a tensor name a source does not hold. */
export function missingTensor(name: string, where: string): InputError {
  return new InputError(`tensor '${name}' not found in ${where}`);
}

type FileFormat = 'safetensors' | 'pytorch-zip' | 'pickle';

/** Decides a file's format from its first bytes (the extension only helps the error messages). */
async function sniff(file: RandomAccessFile): Promise<FileFormat> {
  if (file.size === 0) throw new InputError(`${file.path}: empty file, not a checkpoint`);
  const head = await file.readAt(0, Math.min(file.size, 16), 'file header');
  // u64 header length, then '{'. Never a zip: its byte 8 is the low byte of a compression method (0 or 8).
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors';
  if (head[0] === 0x50 && head[1] === 0x4b) return 'pytorch-zip'; // "PK": zip archive
  // PROTO opcode: a bare pickle, as torch.save wrote before 1.6 (magic number, then pickles) or pickle.dump.
  if (head[0] === 0x80) return 'pickle';
  if (extname(file.path) === '.safetensors') return 'safetensors'; // let the header checks say what is wrong
  throw new InputError(`${file.path}: not a checkpoint (neither safetensors nor a torch.save zip archive)`);
}

/** Opens one checkpoint file: .safetensors, or a torch.save archive (.bin, .pth, .pt, TorchScript). */
export async function openCheckpointFile(path: string): Promise<TensorSource> {
  const file = await RandomAccessFile.open(path);
  try {
    const format = await sniff(file);
    if (format === 'safetensors') return await SafetensorsFile.open(file);
    if (format === 'pytorch-zip') return await PytorchFile.open(file);
    throw new InputError(`${path}: a bare pickle (the legacy pre-1.6 torch.save format) is not supported and was not loaded; ` +
      'if you trust it, re-save it with torch >= 1.6 (torch.save(torch.load(path), path)) or convert it to safetensors');
  } catch (err) {
    await file.close();
    throw err;
  }
}

/** The checkpoint files of a model directory, in order of preference (HF loads safetensors first). */
const DIRECTORY_ENTRIES = ['model.safetensors.index.json', 'model.safetensors', 'pytorch_model.bin.index.json', 'pytorch_model.bin'];
const META_SHARD = /^consolidated\.\d+\.pth$/;

/**
 * Opens a checkpoint file, an index json or a model directory. In a directory the first of
 * DIRECTORY_ENTRIES present is used, else a single consolidated.NN.pth, else a single *.safetensors file.
 * Several consolidated.NN.pth files (Meta's model-parallel split) are refused: their tensors share names
 * and model code merges them along their split dimensions, opening each with openCheckpointFile.
 */
export async function openCheckpoint(path: string): Promise<TensorSource> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (err) {
    throw new InputError(`cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!isDirectory) return basename(path).endsWith('.index.json') ? openShardedIndex(path) : openCheckpointFile(path);
  const names = await readdir(path);
  const preferred = DIRECTORY_ENTRIES.find((name) => names.includes(name));
  if (preferred) return openCheckpoint(join(path, preferred));
  const metaShards = names.filter((name) => META_SHARD.test(name)).sort();
  if (metaShards.length === 1) return openCheckpointFile(join(path, metaShards[0]!));
  if (metaShards.length > 1) {
    throw new InputError(`${path}: ${metaShards.length} model-parallel shards (${metaShards.join(', ')}); ` +
      'they hold the same tensor names split across files: open each file on its own');
  }
  const safetensors = names.filter((name) => name.endsWith('.safetensors'));
  if (safetensors.length === 1) return openCheckpointFile(join(path, safetensors[0]!));
  throw new InputError(`${path}: no checkpoint found (looked for ${DIRECTORY_ENTRIES.join(', ')}, consolidated.NN.pth, ` +
    `a single *.safetensors${safetensors.length ? `; found ${safetensors.length}` : ''})`);
}
