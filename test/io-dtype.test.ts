import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { byteSize, isDType, toFloat32 } from '../src/io/dtype.js';

function u16(...values: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(values).buffer);
}

test('F16 to F32 is exact, subnormals, infinities, NaN and -0 included (IEEE 754 binary16)', () => {
  const out = toFloat32('F16', u16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x3555, 0x7c00, 0xfc00, 0x8000, 0x7e00));
  assert.deepEqual([...out].slice(0, 10), [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 0.333251953125, Infinity, -Infinity, -0]);
  assert.ok(Number.isNaN(out[10]));
});

test('BF16 to F32 keeps the top 16 bits', () => {
  const out = toFloat32('BF16', u16(0x3f80, 0x4049, 0xff80, 0x0001, 0xc2f7));
  assert.deepEqual([...out], [1, 3.140625, -Infinity, 2 ** -133, -123.5]);
});

test('F32 and F64 inputs, unaligned bytes', () => {
  const f32 = new Uint8Array(Float32Array.of(1.5, -0.1).buffer);
  const view = toFloat32('F32', f32);
  assert.equal(view.buffer, f32.buffer); // aligned: no copy
  const unaligned = new Uint8Array(9);
  unaligned.set(f32, 1);
  assert.deepEqual([...toFloat32('F32', unaligned.subarray(1))], [1.5, Math.fround(-0.1)]);
  const f64 = new Uint8Array(17);
  f64.set(new Uint8Array(Float64Array.of(0.1, 1e300).buffer), 1);
  assert.deepEqual([...toFloat32('F64', f64.subarray(1))], [Math.fround(0.1), Infinity]);
});

test('integer dtypes and partial elements are refused', () => {
  assert.throws(() => toFloat32('I64', new Uint8Array(8)), InputError);
  assert.throws(() => toFloat32('F16', new Uint8Array(3)), /3 bytes are not a whole number of 2-byte elements/);
});

test('dtype names and sizes', () => {
  assert.ok(isDType('BOOL') && isDType('BF16') && !isDType('F8_E4M3') && !isDType('toString'));
  assert.equal(byteSize('I64', [2, 3], 'x'), 48);
  assert.equal(byteSize('BOOL', [], 'x'), 1);
  assert.throws(() => byteSize('F32', [2 ** 30, 2 ** 30, 2 ** 30], 'x'), /too large/);
});
