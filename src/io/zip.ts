import { inflateRawSync } from 'node:zlib';
import { InputError } from '../errors.js';
import type { RandomAccessFile } from './file.js';

/** An archive member, as the central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** Central directories past this size are refused (a torch archive has a few hundred bytes per tensor). */
const MAX_CENTRAL_DIRECTORY = 256 << 20;
/** Largest member inflated into memory (pickles and small records; tensor data must be stored). */
const MAX_INFLATED = 1 << 30;

/**
 * The central directory of a zip archive (PKWARE APPNOTE.TXT 4.3, with ZIP64 4.3.14-4.3.15 and extra field
 * 0x0001). Members are read by offset; only small members may be deflated.
 */
export class ZipArchive {
  private readonly dataOffsets = new Map<string, number>();

  private constructor(readonly file: RandomAccessFile, readonly entries: Map<string, ZipEntry>) {}

  static async open(file: RandomAccessFile): Promise<ZipArchive> {
    const tailLength = Math.min(file.size, EOCD_SIZE + MAX_COMMENT);
    const tailStart = file.size - tailLength;
    const tail = await file.readAt(tailStart, tailLength, 'end of zip archive');
    const view = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
      if (view.getUint32(i, true) === EOCD_SIGNATURE) { eocd = i; break; }
    }
    if (eocd < 0) throw new InputError(`${file.path}: not a complete zip archive (no end-of-central-directory record; truncated?)`);
    let count = view.getUint16(eocd + 10, true);
    let cdSize = view.getUint32(eocd + 12, true);
    let cdOffset = view.getUint32(eocd + 16, true);
    const locator = eocd - 20;
    if (locator >= 0 && view.getUint32(locator, true) === ZIP64_LOCATOR_SIGNATURE) {
      const zip64Offset = safeNumber(view.getBigUint64(locator + 8, true), file.path);
      const record = new DataView((await file.readAt(zip64Offset, 56, 'ZIP64 end of central directory')).buffer);
      if (record.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) throw new InputError(`${file.path}: bad ZIP64 end-of-central-directory record at offset ${zip64Offset}`);
      count = safeNumber(record.getBigUint64(32, true), file.path);
      cdSize = safeNumber(record.getBigUint64(40, true), file.path);
      cdOffset = safeNumber(record.getBigUint64(48, true), file.path);
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY) throw new InputError(`${file.path}: zip central directory of ${cdSize} bytes is too large`);
    const directory = await file.readAt(cdOffset, cdSize, 'zip central directory');
    return new ZipArchive(file, parseCentralDirectory(directory, count, file));
  }

  /** Byte offset of a member's data in the file, after checking its local header. */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry.name);
    if (known !== undefined) return known;
    const header = new DataView((await this.file.readAt(entry.localHeaderOffset, 30, `local header of '${entry.name}'`)).buffer);
    if (header.getUint32(0, true) !== LOCAL_SIGNATURE) {
      throw new InputError(`${this.file.path}: no local header for '${entry.name}' at offset ${entry.localHeaderOffset}`);
    }
    const offset = entry.localHeaderOffset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
    if (offset + entry.compressedSize > this.file.size) {
      throw new InputError(`${this.file.path}: data of '${entry.name}' (${entry.compressedSize} bytes at ${offset}) runs past the end of the file (truncated?)`);
    }
    this.dataOffsets.set(entry.name, offset);
    return offset;
  }

  /** Bytes [start, start+length) of a stored member; compressed members cannot be read by offset. */
  async readStored(entry: ZipEntry, start: number, length: number): Promise<Uint8Array> {
    if (entry.method !== 0) throw new InputError(`${this.file.path}: '${entry.name}' is compressed (method ${entry.method}); tensor data must be stored uncompressed`);
    if (start < 0 || start + length > entry.size) {
      throw new InputError(`${this.file.path}: bytes ${start}..${start + length} lie outside '${entry.name}' (${entry.size} bytes)`);
    }
    return this.file.readAt((await this.dataOffset(entry)) + start, length, `'${entry.name}'`);
  }

  /** A whole small member (stored or deflated), e.g. a pickle. */
  async readWhole(entry: ZipEntry): Promise<Uint8Array> {
    if (entry.method === 0) return this.readStored(entry, 0, entry.size);
    if (entry.method !== 8) throw new InputError(`${this.file.path}: '${entry.name}' uses unsupported compression method ${entry.method}`);
    if (entry.size > MAX_INFLATED) throw new InputError(`${this.file.path}: '${entry.name}' inflates to ${entry.size} bytes, too large`);
    const compressed = await this.file.readAt(await this.dataOffset(entry), entry.compressedSize, `'${entry.name}'`);
    let inflated: Buffer;
    try {
      inflated = inflateRawSync(compressed, { maxOutputLength: Math.max(entry.size, 1) });
    } catch (err) {
      throw new InputError(`${this.file.path}: cannot inflate '${entry.name}': ${(err as Error).message}`);
    }
    if (inflated.length !== entry.size) throw new InputError(`${this.file.path}: '${entry.name}' inflated to ${inflated.length} bytes, expected ${entry.size}`);
    return inflated;
  }
}

function parseCentralDirectory(directory: Uint8Array, count: number, file: RandomAccessFile): Map<string, ZipEntry> {
  const view = new DataView(directory.buffer, directory.byteOffset, directory.byteLength);
  const names = new TextDecoder('utf-8', { fatal: false });
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > directory.length || view.getUint32(at, true) !== CENTRAL_SIGNATURE) {
      throw new InputError(`${file.path}: zip central directory entry ${i} is malformed (offset ${at})`);
    }
    const flags = view.getUint16(at + 8, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > directory.length) throw new InputError(`${file.path}: zip central directory entry ${i} runs past the directory`);
    const name = names.decode(directory.subarray(at + 46, at + 46 + nameLength));
    if (flags & 1) throw new InputError(`${file.path}: '${name}' is encrypted`);
    const entry: ZipEntry = {
      name,
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localHeaderOffset: view.getUint32(at + 42, true),
    };
    applyZip64Extra(entry, new DataView(directory.buffer, directory.byteOffset + at + 46 + nameLength, extraLength), file.path);
    if (entry.localHeaderOffset + 30 + entry.compressedSize > file.size) {
      throw new InputError(`${file.path}: '${name}' (${entry.compressedSize} bytes at ${entry.localHeaderOffset}) runs past the end of the file (truncated?)`);
    }
    if (entries.has(name)) throw new InputError(`${file.path}: zip member '${name}' appears twice`);
    entries.set(name, entry);
    at = end;
  }
  return entries;
}

/** ZIP64 extended information (APPNOTE 4.5.3): the 64-bit values of the fields that are 0xFFFFFFFF, in order. */
function applyZip64Extra(entry: ZipEntry, extra: DataView, where: string): void {
  const fields = (['size', 'compressedSize', 'localHeaderOffset'] as const).filter((key) => entry[key] === 0xffffffff);
  if (fields.length === 0) return;
  for (let at = 0; at + 4 <= extra.byteLength;) {
    const id = extra.getUint16(at, true);
    const length = extra.getUint16(at + 2, true);
    if (id === 0x0001) {
      if (length < 8 * fields.length || at + 4 + length > extra.byteLength) throw new InputError(`${where}: '${entry.name}' has a short ZIP64 extra field`);
      fields.forEach((key, i) => { entry[key] = safeNumber(extra.getBigUint64(at + 4 + 8 * i, true), where); });
      return;
    }
    at += 4 + length;
  }
  throw new InputError(`${where}: '${entry.name}' needs a ZIP64 extra field and has none`);
}

function safeNumber(value: bigint, where: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new InputError(`${where}: zip offset or size ${value} is out of range`);
  return Number(value);
}
