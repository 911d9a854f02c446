// A small pickle that makes allowed callables copy a memoised argument over and over must be refused before it
// builds gigabytes (review finding: ~7 bytes of pickle per 1 MiB copy through _codecs.encode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { unpickle } from '../src/io/pickle.js';

function amplifyingPickle(textBytes: number, calls: number): Uint8Array {
  const out: number[] = [0x80, 0x02];
  const ascii = (s: string) => out.push(...Buffer.from(s, 'latin1'));
  ascii('c_codecs\nencode\n');
  out.push(0x71, 0); // BINPUT 0
  out.push(0x58, ...new Uint8Array(new Uint32Array([textBytes]).buffer)); // BINUNICODE
  for (let i = 0; i < textBytes; i++) out.push(0x61);
  out.push(0x71, 1);
  out.push(0x8c, 6);
  ascii('latin1');
  out.push(0x71, 2);
  for (let i = 0; i < calls; i++) out.push(0x68, 0, 0x68, 1, 0x68, 2, 0x86, 0x52, 0x30); // BINGET ×3, TUPLE2, REDUCE, POP
  out.push(0x4e, 0x2e); // NONE, STOP
  return Uint8Array.from(out);
}

const options = { where: 'hostile.pkl', functions: new Map(), isOpaqueClass: () => false };

test('allowed callables cannot amplify a pickle into unbounded memory', () => {
  assert.throws(() => unpickle(amplifyingPickle(1 << 20, 200), options),
    (e: Error) => e instanceof InputError && /builds far more data than it holds/.test(e.message) && !e.message.includes('\n'));
  // A few calls of the same kind, as protocol 2 writes bytes objects, are fine.
  assert.equal(unpickle(amplifyingPickle(1 << 10, 3), options), null);
});
