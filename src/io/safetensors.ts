import { InputError } from '../errors.js';
import { isObject } from './json.js';
import { type DType, byteSize, isDType } from './dtype.js';
import type { RandomAccessFile } from './file.js';
import { type TensorInfo, type TensorSource, missingTensor, readAsFloat32 } from './checkpoint.js';

/** Same limit as the reference implementation (huggingface/safetensors, safetensors/src/tensor.rs MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;

interface Entry extends TensorInfo {
  /** Absolute file offset of the first byte. */
  start: number;
  length: number;
}

/**
 * A .safetensors file: u64 LE header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__?},
 * then the data; offsets are relative to the first byte after the header. Format: huggingface/safetensors README.
 */
export class SafetensorsFile implements TensorSource {
  readonly format = 'safetensors';

  private constructor(
    private readonly file: RandomAccessFile,
    private readonly entries: Map<string, Entry>,
    /** The header's `__metadata__` string map (empty when absent). */
    readonly metadata: Record<string, string>,
  ) {}

  /** Validates the header and takes ownership of `file`. */
  static async open(file: RandomAccessFile): Promise<SafetensorsFile> {
    const where = file.path;
    if (file.size < 8) throw new InputError(`${where}: ${file.size}-byte file is too short for a safetensors header`);
    const headerLength = Number(new DataView((await file.readAt(0, 8, 'header length')).buffer).getBigUint64(0, true));
    if (headerLength > MAX_HEADER_BYTES) throw new InputError(`${where}: safetensors header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
    if (8 + headerLength > file.size) {
      throw new InputError(`${where}: safetensors header length ${headerLength} runs past the end of the ${file.size}-byte file`);
    }
    const header = parseHeaderJson(await file.readAt(8, headerLength, 'safetensors header'), where);
    const dataStart = 8 + headerLength;
    const { entries, metadata } = parseEntries(header, file.size - dataStart, where);
    for (const entry of entries.values()) entry.start += dataStart;
    return new SafetensorsFile(file, entries, metadata);
  }

  list(): TensorInfo[] {
    return [...this.entries.values()].map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] }));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const { dtype, shape } = this.entry(name);
    return { name, dtype, shape: [...shape] };
  }

  async read(name: string): Promise<Uint8Array> {
    const { start, length } = this.entry(name);
    return this.file.readAt(start, length, `tensor '${name}'`);
  }

  readFloat32(name: string): Promise<Float32Array> {
    return readAsFloat32(this, name);
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) throw missingTensor(name, this.file.path);
    return entry;
  }
}

function parseHeaderJson(bytes: Uint8Array, where: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InputError(`${where}: safetensors header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new InputError(`${where}: safetensors header is not a JSON object`);
  }
  return header as Record<string, unknown>;
}

/** Checks every entry against the data size (`dataLength` bytes after the header) and against the others. */
function parseEntries(header: Record<string, unknown>, dataLength: number, where: string) {
  const entries = new Map<string, Entry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, where);
      continue;
    }
    const at = `${where}: tensor '${name}'`;
    if (typeof value !== 'object' || value === null) throw new InputError(`${at}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isDType(dtype)) throw new InputError(`${at}: unsupported dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw new InputError(`${at}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw new InputError(`${at}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) throw new InputError(`${at}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes)`);
    const expected = byteSize(dtype as DType, shape, at);
    if (end - begin !== expected) {
      throw new InputError(`${at}: ${dtype} [${shape.join(', ')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.set(name, { name, dtype: dtype as DType, shape: shape as number[], start: begin, length: end - begin });
  }
  const sorted = [...entries.values()].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const [previous, entry] = [sorted[i - 1]!, sorted[i]!];
    if (entry.start < previous.start + previous.length) {
      throw new InputError(`${where}: tensors '${previous.name}' and '${entry.name}' overlap in the data (offsets ${previous.start}..${previous.start + previous.length} and ${entry.start}..)`);
    }
  }
  return { entries, metadata };
}

function parseMetadata(value: unknown, where: string): Record<string, string> {
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new InputError(`${where}: safetensors __metadata__ is not a map of strings`);
  }
  return value as Record<string, string>;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
