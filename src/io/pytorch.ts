import { InputError } from '../errors.js';
import { type DType, DTYPE_SIZE, numElements } from './dtype.js';
import type { RandomAccessFile } from './file.js';
import { type TensorInfo, type TensorSource, missingTensor, readAsFloat32 } from './checkpoint.js';
import { HostValue, PyDict, PyGlobal, PyObject, type PyValue, describe, unpickle } from './pickle.js';
import { ZipArchive, type ZipEntry } from './zip.js';

/** torch's typed storage classes (torch/storage.py) and the element types they hold. */
const STORAGE_DTYPES: Record<string, DType> = {
  'torch.FloatStorage': 'F32', 'torch.HalfStorage': 'F16', 'torch.BFloat16Storage': 'BF16', 'torch.DoubleStorage': 'F64',
  'torch.LongStorage': 'I64', 'torch.IntStorage': 'I32', 'torch.ShortStorage': 'I16', 'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8', 'torch.BoolStorage': 'BOOL',
};

/** Largest data.pkl accepted: it describes tensors, their bytes live elsewhere. */
const MAX_PICKLE_BYTES = 1 << 30;
/** Deepest container nesting followed when collecting tensors. */
const MAX_DEPTH = 100;

/** A storage record `<archive>/data/<key>`: `numel` elements of `dtype`. */
class Storage extends HostValue {
  constructor(readonly entry: ZipEntry, readonly dtype: DType, readonly numel: number) {
    super();
  }
}

/** A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view of a storage (in elements). */
class Tensor extends HostValue {
  constructor(readonly storage: Storage, readonly offset: number, readonly shape: number[], readonly strides: number[]) {
    super();
  }
}

/**
 * A `torch.save` archive (PyTorch >= 1.6, torch/serialization.py _save): zip members `<archive>/data.pkl`
 * (the pickled object) and `<archive>/data/<key>` (raw little-endian storage bytes, stored uncompressed),
 * storages referenced by persistent id ('storage', StorageClass, key, location, numel). TorchScript archives
 * (torch.jit.save) have the same layout; their module tree unpickles to opaque `__torch__.*` records.
 * Tensors are named by their path through dicts, lists and object attributes, joined with '.'
 * (a state dict's names as they are; `{'model': {...}}` gives `model.<name>`).
 */
export class PytorchFile implements TensorSource {
  readonly format = 'pytorch';

  private constructor(
    private readonly zip: ZipArchive,
    private readonly tensors: Map<string, Tensor>,
    /** The unpickled object, for callers that need its non-tensor data (epoch, args…). */
    readonly root: PyValue,
  ) {}

  /** Parses the archive's pickle and takes ownership of `file`. */
  static async open(file: RandomAccessFile): Promise<PytorchFile> {
    const zip = await ZipArchive.open(file);
    const pickles = [...zip.entries.values()].filter((entry) => /^([^/]+\/)?data\.pkl$/.test(entry.name));
    if (pickles.length !== 1) {
      throw new InputError(`${file.path}: zip archive without ${pickles.length ? 'a single' : 'a'} data.pkl: not a torch.save checkpoint`);
    }
    const pickle = pickles[0]!;
    const prefix = pickle.name.slice(0, -'data.pkl'.length);
    const byteorder = zip.entries.get(`${prefix}byteorder`);
    if (byteorder && new TextDecoder().decode(await zip.readWhole(byteorder)) !== 'little') {
      throw new InputError(`${file.path}: big-endian storages are not supported`);
    }
    if (pickle.size > MAX_PICKLE_BYTES) throw new InputError(`${file.path}: ${pickle.name} of ${pickle.size} bytes is too large`);
    const root = unpickle(await zip.readWhole(pickle), {
      where: `${file.path}: ${pickle.name}`,
      functions: torchFunctions(`${file.path}: ${pickle.name}`),
      isOpaqueClass: (name) => name === 'argparse.Namespace' || name.startsWith('__torch__.'),
      persistentLoad: storageLoader(zip, prefix, `${file.path}: ${pickle.name}`),
    });
    return new PytorchFile(zip, collectTensors(root, file.path), root);
  }

  list(): TensorInfo[] {
    return [...this.tensors].map(([name, tensor]) => ({ name, dtype: tensor.storage.dtype, shape: [...tensor.shape] }));
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const tensor = this.tensor(name);
    return { name, dtype: tensor.storage.dtype, shape: [...tensor.shape] };
  }

  async read(name: string): Promise<Uint8Array> {
    const { storage, offset, shape, strides } = this.tensor(name);
    const itemSize = DTYPE_SIZE[storage.dtype];
    const count = numElements(shape, name);
    if (count === 0) return new Uint8Array(0);
    if (isRowMajor(shape, strides)) return this.zip.readStored(storage.entry, offset * itemSize, count * itemSize);
    // A strided view: read the span it covers, then gather its elements in row-major order.
    const span = 1 + shape.reduce((last, size, i) => last + (size - 1) * strides[i]!, 0);
    const source = await this.zip.readStored(storage.entry, offset * itemSize, span * itemSize);
    return gather(source, shape, strides, itemSize);
  }

  readFloat32(name: string): Promise<Float32Array> {
    return readAsFloat32(this, name);
  }

  close(): Promise<void> {
    return this.zip.file.close();
  }

  private tensor(name: string): Tensor {
    const tensor = this.tensors.get(name);
    if (!tensor) throw missingTensor(name, this.zip.file.path);
    return tensor;
  }
}

/** persistent_load of torch/serialization.py _load: storages by key, each checked against its record's size. */
function storageLoader(zip: ZipArchive, prefix: string, where: string): (pid: PyValue) => PyValue {
  const storages = new Map<string, Storage>();
  return (pid) => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') throw new InputError(`${where}: unsupported persistent id ${describe(pid)}`);
    const [, type, key, , numel] = pid;
    const dtype = type instanceof PyGlobal ? STORAGE_DTYPES[type.qualifiedName] : undefined;
    if (!dtype) throw new InputError(`${where}: unsupported storage type ${describe(type)}`);
    if (typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) throw new InputError(`${where}: malformed storage id for key ${String(key)}`);
    const known = storages.get(key);
    if (known) {
      if (known.dtype !== dtype) throw new InputError(`${where}: storage ${key} is used as both ${known.dtype} and ${dtype}`);
      return known;
    }
    const entry = zip.entries.get(`${prefix}data/${key}`);
    if (!entry) throw new InputError(`${where}: storage ${key} has no record ${prefix}data/${key}`);
    if (entry.size !== (numel as number) * DTYPE_SIZE[dtype]) {
      throw new InputError(`${where}: storage ${key} claims ${numel} ${dtype} elements but its record holds ${entry.size} bytes`);
    }
    const storage = new Storage(entry, dtype, numel as number);
    storages.set(key, storage);
    return storage;
  };
}

/** The callables torch.save's pickles use (torch/_utils.py, torch/_tensor.py __reduce_ex__), as JS. */
function torchFunctions(where: string): Map<string, (args: PyValue[]) => PyValue> {
  const parameter = ([data]: PyValue[]) => {
    if (!(data instanceof Tensor)) throw new InputError(`${where}: _rebuild_parameter of ${describe(data)}`);
    return data;
  };
  return new Map<string, (args: PyValue[]) => PyValue>([
    ['torch._utils._rebuild_tensor_v2', ([storage, offset, shape, strides]) => rebuildTensor(storage, offset, shape, strides, where)],
    ['torch._utils._rebuild_parameter', parameter],
    ['torch._utils._rebuild_parameter_with_state', parameter],
    ['collections.OrderedDict', (args) => orderedDict(args, where)],
  ]);
}

function rebuildTensor(storage: PyValue | undefined, offset: PyValue | undefined, shape: PyValue | undefined, strides: PyValue | undefined, where: string): Tensor {
  const counts = (value: PyValue | undefined): value is number[] => Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0);
  if (!(storage instanceof Storage) || !Number.isSafeInteger(offset) || (offset as number) < 0 || !counts(shape) || !counts(strides) || shape.length !== strides.length) {
    throw new InputError(`${where}: malformed _rebuild_tensor_v2 arguments`);
  }
  const count = numElements(shape, where);
  const last = (offset as number) + shape.reduce((sum, size, i) => sum + (size - 1) * strides[i]!, 0);
  if (count > 0 && last >= storage.numel) {
    throw new InputError(`${where}: tensor of shape [${shape.join(', ')}] at offset ${offset} runs past its storage ${storage.entry.name} (${storage.numel} elements)`);
  }
  return new Tensor(storage, offset as number, [...shape], [...strides]);
}

function orderedDict(args: PyValue[], where: string): PyDict {
  const dict = new PyDict();
  const [pairs] = args;
  if (pairs === undefined) return dict;
  if (!Array.isArray(pairs)) throw new InputError(`${where}: OrderedDict of ${describe(pairs)}`);
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new InputError(`${where}: OrderedDict item is not a pair`);
    dict.entries.set(pair[0]!, pair[1]!);
  }
  return dict;
}

/** Every tensor reachable from `root`, named by its path; each container is visited once (shared ones are not repeated). */
function collectTensors(root: PyValue, where: string): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  const visited = new Set<object>();
  const visit = (value: PyValue, path: string, depth: number): void => {
    if (value instanceof Tensor) {
      if (tensors.has(path)) throw new InputError(`${where}: tensor name '${path}' occurs twice`);
      tensors.set(path, value);
      return;
    }
    if (typeof value !== 'object' || value === null || visited.has(value)) return;
    visited.add(value);
    if (depth > MAX_DEPTH) throw new InputError(`${where}: objects nested deeper than ${MAX_DEPTH} levels`);
    const child = (key: string) => (path ? `${path}.${key}` : key);
    if (value instanceof PyDict) {
      for (const [key, item] of value.entries) {
        if (typeof key === 'string' || typeof key === 'number' || typeof key === 'bigint') visit(item, child(String(key)), depth + 1);
      }
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, child(String(i)), depth + 1));
    } else if (value instanceof PyObject) {
      // Attributes: BUILD's state is the instance dict, or a (dict, slots) pair (Lib/pickle.py load_build).
      const parts = Array.isArray(value.state) && value.state.length === 2 ? value.state : [value.state];
      for (const part of parts) if (part instanceof PyDict) visit(part, path, depth + 1);
    }
  };
  visit(root, '', 0);
  return tensors;
}

function isRowMajor(shape: number[], strides: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** The elements of a strided view of `source` (element 0 at byte 0), in row-major order. */
function gather(source: Uint8Array, shape: number[], strides: number[], itemSize: number): Uint8Array {
  const count = numElements(shape, 'tensor');
  const out = new Uint8Array(count * itemSize);
  // Copy whole 1-, 2- or 4-byte words (never through float types, which may rewrite NaN bits).
  const wordSize = Math.min(itemSize, 4);
  const Words = wordSize === 4 ? Uint32Array : wordSize === 2 ? Uint16Array : Uint8Array;
  const bytes = source.byteOffset % wordSize === 0 ? source : source.slice();
  const from = new Words(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / wordSize);
  const to = new Words(out.buffer);
  const perElement = itemSize / wordSize;
  const index = new Array<number>(shape.length).fill(0);
  let at = 0; // element offset in source
  for (let n = 0; n < count; n++) {
    for (let w = 0; w < perElement; w++) to[n * perElement + w] = from[at * perElement + w]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) { at += strides[d]!; break; }
      at -= (shape[d]! - 1) * strides[d]!;
      index[d] = 0;
    }
  }
  return out;
}
