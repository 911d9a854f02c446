import assert from 'node:assert/strict';

/** Byte-exact comparison that reports how many bytes differ and the first one, not a 100 kB dump. */
export function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let first = -1, count = 0;
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  assert.equal(count, 0, `${what}: ${count} bytes differ, first at ${first} (${actual[first]} vs ${expected[first]})`);
}
