import { open, rename, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, basename } from 'node:path';
import { Graph, GraphError, OPSET, type AttrValue, type Initializer, type Value } from './ir.js';
import { Message } from './protobuf.js';
import { onnxTypeCode } from './types.js';

/** ONNX IR version that goes with opset 21 (onnx/docs/Versioning.md). */
const IR_VERSION = 10;
/** Page alignment for external weights, so ORT can map them from the file. */
const EXTERNAL_ALIGN = 4096;

export interface SerializeOptions {
  /** Write weights of at least this many bytes to `externalDataPath` (relative to the model file). */
  external?: { dataFile: string; minBytes?: number };
}

/** Serialises a graph with all weights inside the model (for models well under protobuf's 2 GB limit). */
export async function toOnnxBytes(graph: Graph): Promise<Uint8Array> {
  const weights = new Map<string, Uint8Array>();
  for (const w of graph.initializers) weights.set(w.name, await weightBytes(w));
  return modelProto(graph, (w) => tensorProto(w, weights.get(w.name)!)).encode();
}

/**
 * The graph as an ONNX model without its weights' values (each weight's name, type and shape only): what
 * identifies the computation, cheap to produce since no lazy weight is read.
 */
export function graphStructure(graph: Graph): Uint8Array {
  return modelProto(graph, tensorHeader).encode();
}

/**
 * Writes `modelPath` and its external weights file: weights stream to disk one at a time (never all in memory),
 * so graphs over the 2 GB protobuf limit work; `onWeight` hears the bytes written so far after each weight. Both files are written under temporary names and renamed at the
 * end, so a crash never leaves a half-written model that a later run would trust.
 */
export async function writeOnnxModel(graph: Graph, modelPath: string, minExternalBytes = 1024, onWeight?: (done: number, total: number) => void): Promise<void> {
  await mkdir(dirname(modelPath), { recursive: true });
  const dataName = `${basename(modelPath)}.data`;
  const dataPath = `${modelPath}.data`;
  const tmpData = `${dataPath}.tmp-${process.pid}`;
  const tmpModel = `${modelPath}.tmp-${process.pid}`;
  const locations = new Map<string, { offset: number; length: number }>();
  const inline = new Map<string, Uint8Array>();
  const file = await open(tmpData, 'w');
  const total = graph.weightBytes();
  let done = 0;
  const weights = aheadOf(graph.initializers);
  try {
    let offset = 0;
    for (const [i, w] of graph.initializers.entries()) {
      if (w.byteLength < minExternalBytes) {
        inline.set(w.name, await weights(i));
      } else {
        offset = Math.ceil(offset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
        const bytes = await weights(i);
        await writeFully(file, bytes, offset);
        locations.set(w.name, { offset, length: bytes.byteLength });
        offset += bytes.byteLength;
      }
      done += w.byteLength;
      onWeight?.(done, total);
    }
    await file.sync();
  } finally {
    await file.close();
  }
  const model = modelProto(graph, (w) => {
    const loc = locations.get(w.name);
    if (!loc) return tensorProto(w, inline.get(w.name)!);
    const t = tensorHeader(w);
    for (const [key, value] of [['location', dataName], ['offset', String(loc.offset)], ['length', String(loc.length)]]) {
      t.message(13, new Message().string(1, key!).string(2, value!));
    }
    return t.varint(14, 1); // data_location = EXTERNAL
  }).encode();
  const mf = await open(tmpModel, 'w');
  try {
    await writeFully(mf, model, 0);
    await mf.sync();
  } finally {
    await mf.close();
  }
  await rename(tmpData, dataPath);
  await rename(tmpModel, modelPath);
}

/** Weights produced ahead of the one being written (see aheadOf). */
const PRODUCE_AHEAD = 4;

/**
 * The bytes of initializer i, with the next PRODUCE_AHEAD already being produced: a weight whose production
 * awaits other work (a quantisation in a worker) overlaps with the reading and converting of the next ones.
 * Each weight's bytes are handed out once and then dropped.
 */
function aheadOf(initializers: readonly Initializer[]): (i: number) => Promise<Uint8Array> {
  const started = new Map<number, Promise<Uint8Array>>();
  const start = (i: number) => {
    if (i >= initializers.length || started.has(i)) return;
    const bytes = weightBytes(initializers[i]!);
    bytes.catch(() => {}); // a failure is reported when its turn comes, not as an unhandled rejection
    started.set(i, bytes);
  };
  let next = 0;
  return (i) => {
    for (; next <= i + PRODUCE_AHEAD; next++) start(next);
    const bytes = started.get(i)!;
    started.delete(i);
    return bytes;
  };
}

/** Largest length passed to one write(): Node refuses lengths ≥ 2^31 and Linux writes at most 0x7ffff000 bytes. */
const WRITE_CHUNK = 1 << 30;

/** Writes all of `bytes` at `position`, in chunks, resuming after short writes (weights may exceed 2 GB). */
async function writeFully(file: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await file.write(bytes, done, Math.min(WRITE_CHUNK, bytes.byteLength - done), position + done);
    if (bytesWritten <= 0) throw new Error(`write stopped after ${done} of ${bytes.byteLength} bytes`);
    done += bytesWritten;
  }
}

async function weightBytes(w: Initializer): Promise<Uint8Array> {
  const bytes = w.bytes instanceof Uint8Array ? w.bytes : await w.bytes();
  if (bytes.byteLength !== w.byteLength) {
    throw new GraphError(`weight '${w.name}' produced ${bytes.byteLength} bytes, expected ${w.byteLength}`);
  }
  return bytes;
}

function modelProto(graph: Graph, initializer: (w: Initializer) => Message): Message {
  const model = new Message()
    .varint(1, IR_VERSION)
    .string(2, 'egret')
    .message(7, graphProto(graph, initializer));
  model.message(8, new Message().string(1, '').varint(2, OPSET.onnx));
  model.message(8, new Message().string(1, 'com.microsoft').varint(2, OPSET.microsoft));
  return model;
}

function graphProto(graph: Graph, initializer: (w: Initializer) => Message): Message {
  const g = new Message();
  for (const n of graph.nodes) {
    const node = new Message();
    for (const i of n.inputs) node.string(1, i);
    for (const o of n.outputs) node.string(2, o);
    node.string(3, n.name).string(4, n.opType);
    for (const [name, value] of Object.entries(n.attrs)) node.message(5, attribute(name, value, initializer));
    if (n.domain) node.string(7, n.domain);
    g.message(1, node);
  }
  g.string(2, graph.name);
  for (const w of graph.initializers) g.message(5, initializer(w));
  for (const v of graph.inputs) g.message(11, valueInfo(v));
  for (const v of graph.outputs) g.message(12, valueInfo(v));
  return g;
}

function attribute(name: string, value: AttrValue, initializer: (w: Initializer) => Message): Message {
  // AttributeProto: name=1, f=2, i=3, s=4, g=6, floats=7, ints=8, strings=9, type=20.
  const a = new Message().string(1, name);
  if (value instanceof Graph) return a.message(6, graphProto(value, initializer)).varint(20, 5);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new GraphError(`attribute '${name}': ${value} is not an integer; use { float: ${value} }`);
    return a.varint(3, value).varint(20, 2);
  }
  if (typeof value === 'string') return a.string(4, value).varint(20, 3);
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      for (const s of value as string[]) a.string(9, s);
      return a.varint(20, 8);
    }
    return a.packedVarints(8, value as number[]).varint(20, 7);
  }
  if ('float' in value) return a.float(2, value.float).varint(20, 1);
  return a.packedFloats(7, value.floats).varint(20, 6);
}

function tensorHeader(w: Initializer): Message {
  const t = new Message().packedVarints(1, w.shape).varint(2, onnxTypeCode[w.type]).string(8, w.name);
  return t;
}

function tensorProto(w: Initializer, bytes: Uint8Array): Message {
  return tensorHeader(w).bytes(9, bytes);
}

function valueInfo(v: Value): Message {
  const shape = new Message();
  for (const d of v.shape) {
    shape.message(1, typeof d === 'number' ? new Message().varint(1, d) : new Message().string(2, d));
  }
  const tensorType = new Message().varint(1, onnxTypeCode[v.type]).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}
