import { InputError } from '../errors.js';

/**
 * A restricted unpickler: it builds plain JS values from a pickle (protocols 0-5, the opcodes of
 * CPython's Lib/pickletools.py) and never executes anything. Globals are mere names; calling one
 * (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ) is allowed only for the functions the caller implements in JS and
 * for "opaque" classes, rebuilt as inert records. Anything else is refused.
 */

/** A value a caller's function returns (a tensor, a storage): the unpickler passes it around untouched. */
export abstract class HostValue {}

/** A module-level name, as GLOBAL / STACK_GLOBAL / INST name it. Never resolved, never called. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A dict (or OrderedDict): insertion-ordered. `state` holds what BUILD set on it (OrderedDict's `_metadata`). */
export class PyDict {
  readonly entries = new Map<PyValue, PyValue>();
  state: PyValue = null;
}

/** An instance of an opaque class: its constructor arguments and the state BUILD gave it, as data. */
export class PyObject {
  state: PyValue = null;
  constructor(readonly className: string, readonly args: readonly PyValue[]) {}
}

/** Lists and sets are arrays; tuples and frozensets are frozen arrays. */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyDict | PyObject | PyGlobal | HostValue;

export interface UnpickleOptions {
  /** Where the bytes come from, for messages. */
  where: string;
  /** Callables implemented in JS, by qualified name (`module.name`). */
  functions: ReadonlyMap<string, (args: PyValue[]) => PyValue>;
  /** Classes whose instances are kept as inert PyObject records. */
  isOpaqueClass: (qualifiedName: string) => boolean;
  /** Resolves a persistent id (PERSID / BINPERSID); absent: persistent ids are refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Python 2 module names that Python 3's unpickler maps (Lib/_compat_pickle.py, the ones data pickles use). */
const MODULE_ALIASES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** Malformed data found by a helper that does not know where it is; `run` adds the place. */
class BadData extends Error {}

/** Callables every pickle may use: protocol 2 encodes bytes and sets through them (Lib/pickle.py save_bytes, save_set). */
const BASE_FUNCTIONS = new Map<string, (args: PyValue[]) => PyValue>([
  ['_codecs.encode', ([text, encoding]) => {
    if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1') || /[^\0-\xff]/.test(text)) {
      throw new BadData('_codecs.encode expects (str, "latin1") with latin-1 text');
    }
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  }],
  ['builtins.bytearray', ([data]) => (data === undefined ? new Uint8Array() : data instanceof Uint8Array ? data.slice() : failArgs('bytearray'))],
  ['builtins.set', ([items]) => (items === undefined ? [] : Array.isArray(items) ? [...items] : failArgs('set'))],
  ['builtins.frozenset', ([items]) => Object.freeze(items === undefined ? [] : Array.isArray(items) ? [...items] : failArgs('frozenset'))],
]);

/** Allowed callables may build at most this factor times the pickle's size, plus the base, in all. */
const CALL_BUDGET_FACTOR = 16;
const CALL_BUDGET_BASE = 64 << 20;
/** Text fields beyond this are refused (V8 strings stop near 512 MiB; names and settings are tiny). */
const MAX_TEXT_BYTES = 64 << 20;

/** Approximate bytes a value built by a callable holds (its own storage, not what it shares). */
function sizeOf(value: PyValue): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (Array.isArray(value)) return 8 * value.length + 64;
  if (value instanceof PyDict) return 16 * value.entries.size + 64;
  return 64;
}

function failArgs(name: string): never {
  throw new BadData(`unexpected arguments for ${name}`);
}

export function unpickle(data: Uint8Array, options: UnpickleOptions): PyValue {
  return new Unpickler(data, options).run();
}

class Unpickler {
  private pos = 0;
  private readonly stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly view: DataView;
  /** Size of what allowed callables have built so far (see call). */
  private produced = 0;

  constructor(private readonly data: Uint8Array, private readonly options: UnpickleOptions) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private fail(message: string, at = this.pos): never {
    throw new InputError(`${this.options.where}: ${message} (pickle offset ${at})`);
  }

  run(): PyValue {
    try {
      return this.loop();
    } catch (err) {
      if (err instanceof BadData) this.fail(err.message);
      throw err;
    }
  }

  private loop(): PyValue {
    for (;;) {
      const at = this.pos;
      if (at >= this.data.length) this.fail('pickle ends without STOP (truncated?)');
      const op = this.data[this.pos++]!;
      switch (op) {
        case 0x80: { const version = this.u8(); if (version > 5) this.fail(`unsupported pickle protocol ${version}`, at); break; } // PROTO
        case 0x95: this.take(8); break; // FRAME: framing only
        case 0x2e: { // STOP
          if (this.stack.length === 0) this.fail('STOP with an empty stack', at);
          return this.stack.pop()!;
        }
        case 0x28: this.marks.push(this.stack.length); break; // MARK
        case 0x30: if (this.stack.length > (this.marks.at(-1) ?? 0)) this.stack.pop(); else this.popMark(); break; // POP
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.push(this.top()); break; // DUP
        // Constants and numbers
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4a: this.push(this.view.getInt32(this.advance(4), true)); break; // BININT
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.view.getUint16(this.advance(2), true)); break; // BININT2
        case 0x8a: this.push(this.long(this.u8())); break; // LONG1
        case 0x8b: this.push(this.long(this.u32())); break; // LONG4
        case 0x47: this.push(this.view.getFloat64(this.advance(8), false)); break; // BINFLOAT (big-endian)
        case 0x49: this.push(this.textInt(this.line())); break; // INT
        case 0x4c: this.push(this.textInt(this.line().replace(/L$/, ''))); break; // LONG
        case 0x46: this.push(this.textFloat(this.line())); break; // FLOAT
        // Strings and bytes
        case 0x58: this.push(this.utf8(this.u32())); break; // BINUNICODE
        case 0x8c: this.push(this.utf8(this.u8())); break; // SHORT_BINUNICODE
        case 0x8d: this.push(this.utf8(this.u64())); break; // BINUNICODE8
        case 0x56: this.push(rawUnicodeEscape(this.line())); break; // UNICODE
        case 0x54: this.push(this.utf8(this.i32Length())); break; // BINSTRING (Python 2 str)
        case 0x55: this.push(this.utf8(this.u8())); break; // SHORT_BINSTRING
        case 0x42: this.push(this.take(this.u32()).slice()); break; // BINBYTES
        case 0x43: this.push(this.take(this.u8()).slice()); break; // SHORT_BINBYTES
        case 0x8e: this.push(this.take(this.u64()).slice()); break; // BINBYTES8
        case 0x96: this.push(this.take(this.u64()).slice()); break; // BYTEARRAY8
        // Containers
        case 0x29: this.push(Object.freeze([])); break; // EMPTY_TUPLE
        case 0x85: this.push(Object.freeze(this.popN(1))); break; // TUPLE1
        case 0x86: this.push(Object.freeze(this.popN(2))); break; // TUPLE2
        case 0x87: this.push(Object.freeze(this.popN(3))); break; // TUPLE3
        case 0x74: this.push(Object.freeze(this.popMark())); break; // TUPLE
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x6c: this.push(this.popMark()); break; // LIST
        case 0x61: this.appendTo(this.popN(1)); break; // APPEND
        case 0x65: this.appendTo(this.popMark()); break; // APPENDS
        case 0x8f: this.push([]); break; // EMPTY_SET
        case 0x90: this.appendTo(this.popMark()); break; // ADDITEMS
        case 0x91: this.push(Object.freeze(this.popMark())); break; // FROZENSET
        case 0x7d: this.push(new PyDict()); break; // EMPTY_DICT
        case 0x64: { const dict = new PyDict(); this.setItems(dict, this.popMark()); this.push(dict); break; } // DICT
        case 0x73: { const item = this.popN(2); this.setItems(this.top(), item); break; } // SETITEM
        case 0x75: { const items = this.popMark(); this.setItems(this.top(), items); break; } // SETITEMS
        // Memo
        case 0x67: this.push(this.get(this.textIndex(this.line()))); break; // GET
        case 0x68: this.push(this.get(this.u8())); break; // BINGET
        case 0x6a: this.push(this.get(this.u32())); break; // LONG_BINGET
        case 0x70: this.memo.set(this.textIndex(this.line()), this.top()); break; // PUT
        case 0x71: this.memo.set(this.u8(), this.top()); break; // BINPUT
        case 0x72: this.memo.set(this.u32(), this.top()); break; // LONG_BINPUT
        case 0x94: this.memo.set(this.memo.size, this.top()); break; // MEMOIZE
        // Globals, calls, objects
        case 0x63: { const module = this.line(); this.push(this.global(module, this.line())); break; } // GLOBAL
        case 0x93: { // STACK_GLOBAL
          const [module, name] = this.popN(2);
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings', at);
          this.push(this.global(module, name));
          break;
        }
        case 0x52: { const [callable, args] = this.popN(2); this.push(this.call(callable!, args!)); break; } // REDUCE
        case 0x81: { const [cls, args] = this.popN(2); this.push(this.call(cls!, args!)); break; } // NEWOBJ
        case 0x92: { // NEWOBJ_EX
          const [cls, args, kwargs] = this.popN(3);
          if (!(kwargs instanceof PyDict) || kwargs.entries.size > 0) this.fail('NEWOBJ_EX with keyword arguments is not supported', at);
          this.push(this.call(cls!, args!));
          break;
        }
        case 0x69: { // INST
          const module = this.line();
          const cls = this.global(module, this.line());
          this.push(this.call(cls, Object.freeze(this.popMark())));
          break;
        }
        case 0x6f: { const [cls, ...args] = this.popMark(); this.push(this.call(cls ?? null, Object.freeze(args))); break; } // OBJ
        case 0x62: this.build(this.popN(1)[0]!); break; // BUILD
        case 0x51: this.push(this.persistent(this.popN(1)[0]!)); break; // BINPERSID
        case 0x50: this.push(this.persistent(this.line())); break; // PERSID
        default:
          this.fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}` +
            (op >= 0x82 && op <= 0x84 ? ' (copyreg extension codes are refused)' : op === 0x97 || op === 0x98 ? ' (out-of-band buffers are refused)' : ''), at);
      }
    }
  }

  // --- reading the byte stream ---

  private advance(n: number): number {
    if (n > this.data.length - this.pos) this.fail(`a ${n}-byte field runs past the end of the pickle (truncated?)`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private take(n: number): Uint8Array {
    const at = this.advance(n);
    return this.data.subarray(at, at + n);
  }

  private u8(): number {
    return this.data[this.advance(1)]!;
  }

  private u32(): number {
    return this.view.getUint32(this.advance(4), true);
  }

  private u64(): number {
    const n = this.view.getBigUint64(this.advance(8), true);
    // Lengths are checked against the remaining bytes before any allocation.
    return n > BigInt(this.data.length) ? this.fail(`length ${n} exceeds the pickle size`) : Number(n);
  }

  private i32Length(): number {
    const n = this.view.getInt32(this.advance(4), true);
    return n < 0 ? this.fail(`negative length ${n}`) : n;
  }

  private utf8(n: number): string {
    const bytes = this.take(n);
    if (n > MAX_TEXT_BYTES) this.fail(`a text field of ${n} bytes is larger than any checkpoint needs`);
    return new TextDecoder('utf-8').decode(bytes);
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('a text field has no end of line (truncated?)');
    if (end - this.pos > MAX_TEXT_BYTES) this.fail(`a text field of ${end - this.pos} bytes is larger than any checkpoint needs`);
    const text = Buffer.from(this.data.buffer, this.data.byteOffset + this.pos, end - this.pos).toString('latin1');
    this.pos = end + 1;
    return text;
  }

  /** Two's-complement little-endian integer (LONG1 / LONG4). */
  private long(n: number): number | bigint {
    if (n > 64) this.fail(`${n}-byte integer is too large`);
    const bytes = this.take(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
    if (n > 0 && bytes[n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private textInt(text: string): number | bigint | boolean {
    if (text === '01') return true; // protocol 0 spells booleans this way (pickle.py load_int)
    if (text === '00') return false;
    if (!/^[-+]?\d{1,150}$/.test(text)) this.fail(`bad integer literal ${JSON.stringify(text.slice(0, 40))}`);
    const value = BigInt(text);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private textFloat(text: string): number {
    if (/^[-+]?inf$/.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
    if (text === 'nan') return NaN;
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) this.fail(`bad float literal ${JSON.stringify(text.slice(0, 40))}`);
    return Number(text);
  }

  private textIndex(text: string): number {
    if (!/^\d{1,15}$/.test(text)) this.fail(`bad memo index ${JSON.stringify(text.slice(0, 40))}`);
    return Number(text);
  }

  // --- the stack ---

  private push(value: PyValue): void {
    this.stack.push(value);
  }

  private top(): PyValue {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) this.fail('stack underflow');
    return this.stack.at(-1)!;
  }

  private popN(n: number): PyValue[] {
    if (this.stack.length - n < (this.marks.at(-1) ?? 0)) this.fail('stack underflow');
    return this.stack.splice(this.stack.length - n, n);
  }

  private popMark(): PyValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('no MARK on the stack');
    return this.stack.splice(mark);
  }

  private get(index: number): PyValue {
    if (!this.memo.has(index)) this.fail(`memo entry ${index} is not defined`);
    return this.memo.get(index)!;
  }

  // --- containers and objects ---

  private appendTo(items: PyValue[]): void {
    const target = this.top();
    if (!Array.isArray(target) || Object.isFrozen(target)) this.fail(`cannot append to ${describe(target)}`);
    for (const item of items) target.push(item);
  }

  private setItems(target: PyValue, items: PyValue[]): void {
    if (!(target instanceof PyDict)) this.fail(`cannot set items on ${describe(target)}`);
    if (items.length % 2 !== 0) this.fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) target.entries.set(items[i]!, items[i + 1]!);
  }

  private global(module: string, name: string): PyGlobal {
    return new PyGlobal(MODULE_ALIASES[module] ?? module, name);
  }

  /** The only place a callable is "called": a JS function of the allow-list, an opaque record, or a refusal. */
  private call(callable: PyValue, args: PyValue): PyValue {
    if (!(callable instanceof PyGlobal)) this.fail(`refusing to call ${describe(callable)}`);
    if (!Array.isArray(args)) this.fail(`arguments of ${callable.qualifiedName} are not a tuple`);
    const name = callable.qualifiedName;
    const fn = this.options.functions.get(name) ?? BASE_FUNCTIONS.get(name);
    if (fn) {
      // Each call copies its arguments, and memoised arguments can be passed again and again at a few bytes of
      // pickle each: a budget keeps a small hostile pickle from building gigabytes. Real checkpoints build a
      // fraction of their own size.
      const result = fn([...args]);
      this.produced += sizeOf(result);
      if (this.produced > CALL_BUDGET_FACTOR * this.data.byteLength + CALL_BUDGET_BASE) {
        this.fail(`the pickle builds far more data than it holds (over ${this.produced} bytes from ${this.data.byteLength}): refusing it`);
      }
      return result;
    }
    if (this.options.isOpaqueClass(name)) return new PyObject(name, args);
    this.fail(`refusing to call ${name}: not a function or class allowed in a checkpoint`);
  }

  /** BUILD only stores state as data: no __setstate__ is ever looked up. */
  private build(state: PyValue): void {
    const target = this.top();
    if (target instanceof PyObject || target instanceof PyDict) target.state = state;
    else if (!(target instanceof HostValue)) this.fail(`refusing to BUILD ${describe(target)}`);
  }

  private persistent(pid: PyValue): PyValue {
    if (!this.options.persistentLoad) this.fail('unexpected persistent id');
    return this.options.persistentLoad(pid);
  }
}

/** Protocol 0 UNICODE: raw-unicode-escape, i.e. latin-1 with \uXXXX and \UXXXXXXXX escapes. */
function rawUnicodeEscape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, short?: string, long?: string) => {
    const code = parseInt((short ?? long)!, 16);
    if (code > 0x10ffff) throw new BadData(`bad \\U escape ${long}`);
    return String.fromCodePoint(code);
  });
}

/** A short description of a value for messages. */
export function describe(value: PyValue | undefined): string {
  if (value === null || value === undefined) return 'None';
  if (value instanceof PyGlobal) return value.qualifiedName;
  if (value instanceof PyObject) return `a ${value.className} object`;
  if (value instanceof PyDict) return 'a dict';
  if (value instanceof Uint8Array) return 'bytes';
  if (Array.isArray(value)) return Object.isFrozen(value) ? 'a tuple' : 'a list';
  if (value instanceof HostValue) return `a ${value.constructor.name}`;
  return `a ${typeof value}`;
}
