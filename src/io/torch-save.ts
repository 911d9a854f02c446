/**
 * Writes what `torch.save` writes (torch/serialization.py _save, PyTorch >= 1.6): a zip of `<archive>/data.pkl` — a
 * protocol-2 pickle whose tensors are `torch._utils._rebuild_tensor_v2` calls on persistent-id storages — the
 * storages' raw little-endian bytes as `<archive>/data/<key>`, `<archive>/byteorder` and `<archive>/version`.
 * Members are stored uncompressed with their data 64-byte aligned, as torch's own writer aligns them (so that
 * readers may map them). Like LaVIN's checkpoints, the object may hold dicts, OrderedDicts, lists, tuples, numbers,
 * strings, tensors and argparse Namespaces. The file appears whole or not at all (temporary file, fsync, rename).
 */
import { open, rename, rm } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { DTYPE_SIZE, type DType } from './dtype.js';

/** A tensor to save: contiguous row-major bytes of `dtype`. */
export interface SavedTensor {
  kind: 'tensor';
  dtype: DType;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** Python values the writer knows. Plain JS objects become dicts; `ordered` ones collections.OrderedDict. */
export type SavedValue =
  | null | boolean | number | string | SavedTensor | readonly SavedValue[]
  | { kind: 'tuple'; items: readonly SavedValue[] }
  | { kind: 'int'; value: number }
  | { kind: 'ordered'; entries: Record<string, SavedValue> }
  | { kind: 'namespace'; fields: Record<string, SavedValue> }
  | { [key: string]: SavedValue };

const STORAGE: Partial<Record<DType, string>> = {
  F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', F64: 'DoubleStorage',
  I64: 'LongStorage', I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage',
};

export const tensor = (dtype: DType, shape: readonly number[], data: ArrayBufferView): SavedTensor => ({ kind: 'tensor', dtype, shape, data });

/** The pickle opcodes used (CPython Lib/pickletools.py). */
const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, NONE: 0x4e, TRUE: 0x88, FALSE: 0x89, BININT: 0x4a, LONG1: 0x8a, BINFLOAT: 0x47,
  BINUNICODE: 0x58, EMPTY_DICT: 0x7d, SETITEMS: 0x75, EMPTY_LIST: 0x5d, APPENDS: 0x65, TUPLE: 0x74, EMPTY_TUPLE: 0x29,
  GLOBAL: 0x63, REDUCE: 0x52, NEWOBJ: 0x81, BUILD: 0x62, BINPERSID: 0x51,
} as const;

class PickleWriter {
  private readonly chunks: Uint8Array[] = [];
  readonly storages: SavedTensor[] = [];

  byte(...b: number[]): void {
    this.chunks.push(Uint8Array.from(b));
  }

  bytes(b: Uint8Array): void {
    this.chunks.push(b);
  }

  string(s: string): void {
    const utf8 = new TextEncoder().encode(s);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, utf8.length, true);
    this.byte(OP.BINUNICODE);
    this.bytes(len);
    this.bytes(utf8);
  }

  global(module: string, name: string): void {
    this.byte(OP.GLOBAL);
    this.bytes(new TextEncoder().encode(`${module}\n${name}\n`));
  }

  int(n: number): void {
    if (Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) {
      const b = new Uint8Array(5);
      b[0] = OP.BININT;
      new DataView(b.buffer).setInt32(1, n, true);
      this.bytes(b);
      return;
    }
    // LONG1: little-endian two's complement of the fewest bytes.
    let v = BigInt(n);
    const out: number[] = [];
    do {
      out.push(Number(v & 0xffn));
      v >>= 8n;
    } while (!((v === 0n && (out.at(-1)! & 0x80) === 0) || (v === -1n && (out.at(-1)! & 0x80) !== 0)));
    this.byte(OP.LONG1, out.length, ...out);
  }

  float(x: number): void {
    const b = new Uint8Array(9);
    b[0] = OP.BINFLOAT;
    new DataView(b.buffer).setFloat64(1, x, false);
    this.bytes(b);
  }

  tuple(items: readonly SavedValue[]): void {
    if (items.length === 0) return this.byte(OP.EMPTY_TUPLE);
    this.byte(OP.MARK);
    for (const item of items) this.value(item);
    this.byte(OP.TUPLE);
  }

  dictItems(entries: Record<string, SavedValue>): void {
    const keys = Object.keys(entries);
    if (keys.length === 0) return;
    this.byte(OP.MARK);
    for (const key of keys) {
      this.string(key);
      this.value(entries[key]!);
    }
    this.byte(OP.SETITEMS);
  }

  value(v: SavedValue): void {
    if (v === null) return this.byte(OP.NONE);
    if (v === true) return this.byte(OP.TRUE);
    if (v === false) return this.byte(OP.FALSE);
    if (typeof v === 'number') return Number.isInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === 'string') return this.string(v);
    if (Array.isArray(v)) {
      this.byte(OP.EMPTY_LIST);
      if (v.length === 0) return;
      this.byte(OP.MARK);
      for (const item of v as readonly SavedValue[]) this.value(item);
      return this.byte(OP.APPENDS);
    }
    const o = v as Exclude<SavedValue, null | boolean | number | string | readonly SavedValue[]>;
    switch (o['kind']) {
      case 'tensor': return this.tensor(o as SavedTensor);
      case 'tuple': return this.tuple((o as { items: readonly SavedValue[] }).items);
      case 'int': return this.int((o as { value: number }).value);
      case 'ordered':
        this.global('collections', 'OrderedDict');
        this.byte(OP.EMPTY_TUPLE, OP.REDUCE);
        return this.dictItems((o as { entries: Record<string, SavedValue> }).entries);
      case 'namespace':
        // argparse.Namespace() then its __dict__ (what pickle's default __reduce_ex__ writes).
        this.global('argparse', 'Namespace');
        this.byte(OP.EMPTY_TUPLE, OP.NEWOBJ, OP.EMPTY_DICT);
        this.dictItems((o as { fields: Record<string, SavedValue> }).fields);
        return this.byte(OP.BUILD);
      default:
        this.byte(OP.EMPTY_DICT);
        return this.dictItems(o as Record<string, SavedValue>);
    }
  }

  /** _rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, OrderedDict()) over a storage of its own. */
  tensor(t: SavedTensor): void {
    const storage = STORAGE[t.dtype];
    if (!storage) throw new RangeError(`torch.save: no torch storage for ${t.dtype}`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.byteLength !== numel * DTYPE_SIZE[t.dtype]) throw new RangeError(`torch.save: ${t.dtype}[${t.shape}] needs ${numel * DTYPE_SIZE[t.dtype]} bytes, got ${t.data.byteLength}`);
    const key = String(this.storages.length);
    this.storages.push(t);
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.byte(OP.MARK);
    this.byte(OP.MARK);
    this.string('storage');
    this.global('torch', storage);
    this.string(key);
    this.string('cpu');
    this.int(numel);
    this.byte(OP.TUPLE, OP.BINPERSID);
    this.int(0);
    this.tuple(t.shape.map((d) => ({ kind: 'int', value: d })));
    const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.tuple(strides.map((s) => ({ kind: 'int', value: s })));
    this.byte(OP.FALSE);
    this.global('collections', 'OrderedDict');
    this.byte(OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE);
  }

  pickle(root: SavedValue): Uint8Array {
    this.byte(OP.PROTO, 2);
    this.value(root);
    this.byte(OP.STOP);
    return concat(this.chunks);
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** torch's writer aligns member data to this (caffe2/serialize/inline_container.cc kFieldAlignment). */
const ALIGNMENT = 64;

/** Writes `root` as `torch.save(root, path)` would, under the archive folder name `archive` (torch uses the file's stem). */
export async function torchSave(path: string, root: SavedValue, archive = 'archive'): Promise<void> {
  const writer = new PickleWriter();
  const members: [string, Uint8Array][] = [[`${archive}/data.pkl`, writer.pickle(root)], [`${archive}/byteorder`, new TextEncoder().encode('little')]];
  writer.storages.forEach((t, i) => members.push([`${archive}/data/${i}`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
  members.push([`${archive}/version`, new TextEncoder().encode('3\n')]);

  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, 'w').catch((err: NodeJS.ErrnoException) => {
    throw new InputError(`cannot write ${path}: ${err.code ?? String(err)}`);
  });
  try {
    let offset = 0;
    const central: Uint8Array[] = [];
    const write = async (b: Uint8Array) => {
      await file.write(b);
      offset += b.length;
    };
    for (const [name, data] of members) {
      if (data.length >= 0xffffffff || offset >= 0xffffffff) throw new RangeError(`torch.save: ${name} needs ZIP64, which this writer does not write`);
      const nameBytes = new TextEncoder().encode(name);
      const crc = crc32(data);
      // Padding in an extra field ('FB', as torch names it) puts the data on an ALIGNMENT boundary.
      const headerEnd = offset + 30 + nameBytes.length + 4;
      const pad = (ALIGNMENT - (headerEnd % ALIGNMENT)) % ALIGNMENT;
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true);
      local.setUint16(4, 20, true);
      local.setUint32(14, crc, true);
      local.setUint32(18, data.length, true);
      local.setUint32(22, data.length, true);
      local.setUint16(26, nameBytes.length, true);
      local.setUint16(28, 4 + pad, true);
      const extra = new Uint8Array(4 + pad);
      extra.set([0x46, 0x42, pad & 0xff, pad >> 8]);
      const entry = new DataView(new ArrayBuffer(46));
      entry.setUint32(0, 0x02014b50, true);
      entry.setUint16(4, 20, true);
      entry.setUint16(6, 20, true);
      entry.setUint32(16, crc, true);
      entry.setUint32(20, data.length, true);
      entry.setUint32(24, data.length, true);
      entry.setUint16(28, nameBytes.length, true);
      entry.setUint32(42, offset, true);
      central.push(new Uint8Array(entry.buffer), nameBytes);
      await write(new Uint8Array(local.buffer));
      await write(nameBytes);
      await write(extra);
      await write(data);
    }
    const directory = concat(central);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, members.length, true);
    end.setUint16(10, members.length, true);
    end.setUint32(12, directory.length, true);
    end.setUint32(16, offset, true);
    await write(directory);
    await write(new Uint8Array(end.buffer));
    await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err instanceof InputError || err instanceof RangeError ? err : new InputError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
