/**
 * A minimal protobuf encoder. Messages are trees of parts whose sizes are computed once, then written into a
 * single buffer, so large byte fields (weights) are copied exactly once.
 */
type Part = Uint8Array | Message;

export class Message {
  private readonly parts: Part[] = [];
  private scratch: number[] = [];
  private cachedSize = -1;

  private key(field: number, wireType: number): void {
    this.varintRaw(BigInt(field * 8 + wireType));
  }

  private varintRaw(value: bigint): void {
    // Negative int64 values are written as their 64-bit two's complement (10 bytes), as protobuf requires.
    let v = value < 0n ? value + (1n << 64n) : value;
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private flushScratch(): void {
    if (this.scratch.length) {
      this.parts.push(Uint8Array.from(this.scratch));
      this.scratch = [];
    }
  }

  varint(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varintRaw(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varintRaw(BigInt(data.byteLength));
    this.flushScratch();
    this.parts.push(data);
    return this;
  }

  string(field: number, text: string): this {
    return this.bytes(field, new TextEncoder().encode(text));
  }

  message(field: number, msg: Message): this {
    this.key(field, 2);
    this.flushScratch();
    this.parts.push(msg);
    return this;
  }

  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new Message();
    for (const v of values) inner.varintRaw(BigInt(v));
    return this.message(field, inner);
  }

  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  size(): number {
    if (this.cachedSize >= 0) return this.cachedSize;
    this.flushScratch();
    let n = 0;
    for (const p of this.parts) n += p instanceof Message ? varintLength(p.size()) + p.size() : p.byteLength;
    this.cachedSize = n;
    return n;
  }

  /** The encoded message in one buffer. */
  encode(): Uint8Array {
    const out = new Uint8Array(this.size());
    this.writeInto(out, 0);
    return out;
  }

  private writeInto(out: Uint8Array, at: number): number {
    for (const p of this.parts) {
      if (p instanceof Message) {
        let len = p.size();
        while (len >= 0x80) {
          out[at++] = (len & 0x7f) | 0x80;
          len = Math.floor(len / 128);
        }
        out[at++] = len;
        at = p.writeInto(out, at);
      } else {
        out.set(p, at);
        at += p.byteLength;
      }
    }
    return at;
  }
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}
