import { elemBytes, formatShape, knownSize, type ElemType, type Shape } from './types.js';

export type AttrValue = number | string | number[] | string[] | { float: number } | { floats: number[] } | Graph;

/** Bytes of a weight, produced on demand so that serialisation can stream weights one at a time. */
export type WeightBytes = Uint8Array | (() => Uint8Array | Promise<Uint8Array>);

export interface Initializer {
  readonly name: string;
  readonly type: ElemType;
  readonly shape: readonly number[];
  readonly bytes: WeightBytes;
  /** Byte length, known without producing the bytes. */
  readonly byteLength: number;
}

export interface Node {
  readonly opType: string;
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

/** A tensor inside a graph: its name, element type and (possibly symbolic) shape. */
export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly type: ElemType,
    readonly shape: Shape,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  /** Dim `i`, negative counting from the end. */
  dim(i: number): Shape[number] {
    const d = this.shape[i < 0 ? this.shape.length + i : i];
    if (d === undefined) throw new GraphError(`dim ${i} out of range for ${this.describe()}`);
    return d;
  }

  describe(): string {
    return `'${this.name}' ${this.type}${formatShape(this.shape)}`;
  }
}

/** A graph built wrongly: the message names the op, the tensors and their shapes. */
export class GraphError extends Error {
  override name = 'GraphError';
}

/** The set of ops the graph needs from the com.microsoft domain, opset versions used when serialising. */
export const OPSET = { onnx: 21, microsoft: 1 } as const;

export class Graph {
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly nodes: Node[] = [];
  readonly initializers: Initializer[] = [];
  /**
   * Values whose shape a checkpoint tensor sets (the tensor itself, read by WeightScope, or a linear layer's output):
   * a shape error involving one is the checkpoint disagreeing with its config, not a bug.
   */
  readonly checkpointShapes = new Map<string, { tensor: string; shape: readonly number[] }>();
  /**
   * Weights stored otherwise than their checkpoint tensors (a linear layer's weights transposed, several stacked
   * along their outputs): the tensors, in stacking order. Training reads it to save what it trained in the
   * checkpoint's own layout.
   */
  readonly storedTransposed = new Map<string, readonly string[]>();
  private readonly names = new Set<string>();
  /** Every tensor by name, for passes over the graph (autodiff) that start from node input and output names. */
  private readonly values = new Map<string, Value>();
  private counter = 0;

  constructor(readonly name = 'egret') {}

  /** A fresh name that has not been used in this graph; `hint` keeps names readable in ORT's errors. */
  fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  private claim(name: string, what: string): string {
    if (this.names.has(name)) throw new GraphError(`${what} name '${name}' is already used in graph '${this.name}'`);
    this.names.add(name);
    return name;
  }

  input(name: string, type: ElemType, shape: Shape): Value {
    const v = this.track(new Value(this, this.claim(name, 'input'), type, shape));
    this.inputs.push(v);
    return v;
  }

  /** The tensor named `name` (an input, initializer or node output of this graph). */
  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new GraphError(`graph '${this.name}' has no tensor '${name}'`);
    return v;
  }

  /** The initializer named `name`, if there is one. */
  initializer(name: string): Initializer | undefined {
    return this.initializers.find((w) => w.name === name);
  }

  /**
   * Turns the initializer `name` into a graph input of the same name, type and shape and returns what it held:
   * a weight that training feeds and updates instead of one fixed in the model.
   */
  initializerToInput(name: string): Initializer {
    const at = this.initializers.findIndex((w) => w.name === name);
    if (at < 0) throw new GraphError(`graph '${this.name}' has no initializer '${name}'`);
    const [w] = this.initializers.splice(at, 1);
    this.inputs.push(this.value(name));
    return w!;
  }

  private track(v: Value): Value {
    this.values.set(v.name, v);
    return v;
  }

  /** Marks `value` as a graph output under `name` (an Identity is inserted when the names differ). */
  output(value: Value, name = value.name): Value {
    this.owns(value, 'output');
    let out = value;
    if (name !== value.name) {
      out = this.track(new Value(this, this.claim(name, 'output'), value.type, value.shape));
      this.nodes.push({ opType: 'Identity', domain: '', name: this.fresh(`${name}_identity`), inputs: [value.name], outputs: [out.name], attrs: {} });
    }
    this.outputs.push(out);
    return out;
  }

  /** A weight stored as an initializer: `bytes` is little-endian data in row-major order. */
  weight(name: string, type: ElemType, shape: readonly number[], bytes: WeightBytes, byteLength?: number): Value {
    return this.addInitializer(this.claim(name, 'weight'), type, shape, bytes, byteLength);
  }

  /** A small constant tensor from numbers, stored as `type`. */
  constant(type: ElemType, shape: readonly number[], values: ArrayLike<number | bigint>, hint = 'const'): Value {
    return this.addInitializer(this.fresh(hint), type, shape, encodeValues(type, values));
  }

  private addInitializer(name: string, type: ElemType, shape: readonly number[], bytes: WeightBytes, byteLength?: number): Value {
    const expected = (knownSize(shape) ?? 0) * elemBytes[type];
    const length = bytes instanceof Uint8Array ? bytes.byteLength : (byteLength ?? expected);
    if (length !== expected) {
      throw new GraphError(`weight '${name}' ${type}${formatShape(shape)} needs ${expected} bytes, got ${length}`);
    }
    this.initializers.push({ name, type, shape: [...shape], bytes, byteLength: length });
    return this.track(new Value(this, name, type, shape));
  }

  /** Appends a node; `outputs` gives each output's type and shape, already inferred by the caller. */
  node(opType: string, inputs: readonly (Value | null)[], outputs: readonly { type: ElemType; shape: Shape }[],
       attrs: Record<string, AttrValue> = {}, domain = ''): Value[] {
    for (const v of inputs) if (v) this.owns(v, opType);
    const name = this.fresh(opType);
    const outs = outputs.map((o, i) => this.track(new Value(this, this.fresh(`${name}_out${i}`), o.type, o.shape)));
    this.nodes.push({ opType, domain, name, inputs: inputs.map((v) => (v ? v.name : '')), outputs: outs.map((v) => v.name), attrs });
    return outs;
  }

  private owns(v: Value, where: string): void {
    if (v.graph !== this) throw new GraphError(`${where}: ${v.describe()} belongs to graph '${v.graph.name}', not '${this.name}'`);
  }

  /** Total bytes of all initializers. */
  weightBytes(): number {
    return this.initializers.reduce((sum, w) => sum + w.byteLength, 0);
  }
}

/** Little-endian bytes of `values` stored as `type`. */
export function encodeValues(type: ElemType, values: ArrayLike<number | bigint>): Uint8Array {
  const n = values.length;
  const buf = new ArrayBuffer(n * elemBytes[type]);
  const view = new DataView(buf);
  for (let i = 0; i < n; i++) {
    const x = values[i]!;
    switch (type) {
      case 'float32': view.setFloat32(i * 4, Number(x), true); break;
      case 'float64': view.setFloat64(i * 8, Number(x), true); break;
      case 'int64': view.setBigInt64(i * 8, BigInt(x), true); break;
      case 'int32': view.setInt32(i * 4, Number(x), true); break;
      case 'uint32': view.setUint32(i * 4, Number(x), true); break;
      case 'int16': view.setInt16(i * 2, Number(x), true); break;
      case 'int8': view.setInt8(i, Number(x)); break;
      case 'uint8': case 'bool': view.setUint8(i, Number(x)); break;
      case 'float16': case 'bfloat16':
        throw new GraphError(`constant of type ${type}: pass the encoded bytes to weight() instead`);
    }
  }
  return new Uint8Array(buf);
}
