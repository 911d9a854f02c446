import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../src/errors.js';
import { openCheckpointFile } from '../src/io/checkpoint.js';
import { PyDict, PyGlobal, PyObject, type PyValue, type UnpickleOptions, unpickle } from '../src/io/pickle.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

const options: UnpickleOptions = { where: 'test.pkl', functions: new Map(), isOpaqueClass: (name) => name === 'argparse.Namespace' };

/** The JSON form generate.py uses: dicts as objects, tuples/sets as lists, bytes as int lists, big ints as strings. */
function toJson(value: PyValue): unknown {
  if (value instanceof PyDict) return Object.fromEntries([...value.entries].map(([k, v]) => [String(k), toJson(v)]));
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Uint8Array) return [...value];
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function bytes(text: string): Uint8Array {
  return Buffer.from(text, 'latin1');
}

test('plain values pickled by CPython with protocols 0-5 read back as pickled', async () => {
  const { value, pickles } = JSON.parse(await readFile(join(FIXTURES, 'io/plain-pickles.json'), 'utf8'));
  assert.equal(pickles.length, 6);
  for (const { protocol, hex } of pickles) {
    assert.deepEqual(toJson(unpickle(Buffer.from(hex, 'hex'), options)), value, `protocol ${protocol}`);
  }
});

test('opaque classes become inert records with their BUILD state', () => {
  // NEWOBJ argparse.Namespace () then BUILD {'lr': 0.5}
  const value = unpickle(bytes('\x80\x02cargparse\nNamespace\n)\x81}X\x02\x00\x00\x00lrG?\xe0\x00\x00\x00\x00\x00\x00sb.'), options);
  assert.ok(value instanceof PyObject);
  assert.equal(value.className, 'argparse.Namespace');
  assert.equal((value.state as PyDict).entries.get('lr'), 0.5);
  // A global that is only named, never called, is a plain name.
  const name = unpickle(bytes('\x80\x02cos\nsystem\n.'), options);
  assert.ok(name instanceof PyGlobal && name.qualifiedName === 'os.system');
});

test('calls outside the allow-list are refused, whatever the opcode', () => {
  const refused = (pickle: string, pattern: RegExp) =>
    assert.throws(() => unpickle(bytes(pickle), options), (err: unknown) => err instanceof InputError && pattern.test(err.message));
  refused('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.', /^test\.pkl: refusing to call os\.system/);
  refused('\x80\x04\x8c\x08builtins\x8c\x04eval\x93X\x01\x00\x00\x001\x85R.', /refusing to call builtins\.eval/); // STACK_GLOBAL
  refused('\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.', /refusing to call builtins\.eval/); // Python 2 module name
  refused('\x80\x02csubprocess\nPopen\n)}\x92.', /refusing to call subprocess\.Popen/); // NEWOBJ_EX
  refused('(cos\nsystem\nVls\no.', /refusing to call os\.system/); // OBJ
  refused('\x80\x02}X\x01\x00\x00\x00a\x85R.', /refusing to call a dict/); // REDUCE on data
  refused('\x80\x02cos\nsystem\n}b.', /refusing to BUILD os\.system/);
  refused('\x80\x02X\x02\x00\x00\x00ls\x85X\x02\x00\x00\x00ls\x85R.', /refusing to call a tuple/);
});

test('malformed and hostile byte streams are InputErrors with an offset', () => {
  const refused = (pickle: Uint8Array | string, pattern: RegExp) =>
    assert.throws(() => unpickle(typeof pickle === 'string' ? bytes(pickle) : pickle, options), (err: unknown) => err instanceof InputError && pattern.test(err.message) && /pickle offset \d+/.test(err.message));
  refused('', /ends without STOP/);
  refused('\x80\x02]q\x00', /ends without STOP/);
  refused('\x80\x02X\xff\xff\xff\xffab.', /4294967295-byte field runs past the end/); // lying length, no allocation
  refused('\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x10.', /length 1152921504606846976 exceeds the pickle size/);
  refused('\x80\x06N.', /unsupported pickle protocol 6/);
  refused('\x80\x02\x82\x01.', /opcode 0x82 \(copyreg extension codes are refused\)/);
  refused('\x80\x05\x97.', /out-of-band buffers are refused/);
  refused('\x80\x02\xfe.', /unsupported pickle opcode 0xfe/);
  refused('\x80\x02h\x07.', /memo entry 7 is not defined/);
  refused('\x80\x02R.', /stack underflow/);
  refused('\x80\x02.', /STOP with an empty stack/);
  refused('\x80\x02t.', /no MARK/);
  refused('\x80\x02](K\x01a.', /stack underflow/); // APPEND may not reach below a MARK
  refused('\x80\x02)K\x01a.', /cannot append to a tuple/);
  refused('\x80\x02]K\x01K\x02s.', /cannot set items on a list/);
  refused('\x80\x02(K\x01d.', /odd number of items/);
  refused('\x80\x02\x8a\x41' + '\x00'.repeat(65) + '.', /65-byte integer is too large/);
  refused('I12abc\n.', /bad integer literal/);
  refused('F1e5; import os\n.', /bad float literal/);
  refused('\x80\x02cos\nsystem', /no end of line/);
});

test('cycles and shared containers are walked once; deep nesting is refused', async () => {
  const cyclic = await openCheckpointFile(join(FIXTURES, 'io/malformed/cyclic.pth'));
  assert.deepEqual(cyclic.list(), [{ name: 'w', dtype: 'F32', shape: [2] }]);
  await cyclic.close();
  // 64 levels of [x, x]: 2^64 paths, one tensor; the first path names it.
  const shared = await openCheckpointFile(join(FIXTURES, 'io/malformed/shared.pth'));
  assert.deepEqual(shared.list().map((t) => t.name), [['tree', ...new Array(65).fill('0')].join('.')]);
  await shared.close();
  await assert.rejects(openCheckpointFile(join(FIXTURES, 'io/malformed/deep.pth')), /nested deeper than 100 levels/);
});
