import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertInputError, ROOT, type Run } from './helpers/cli.js';

const FIXTURES = join(ROOT, 'test/fixtures');
const MARKER = 'egret-pwned'; // what the malicious pickles would create in the working directory

const work = await mkdtemp(join(tmpdir(), 'egret-malformed-'));
after(() => rm(work, { recursive: true }));

/** Runs `egret inspect FILE --json` in the scratch directory. */
function inspect(path: string): Run {
  const run = spawnSync(process.execPath, [join(ROOT, 'bin/egret'), 'inspect', path, '--json'], { cwd: work, encoding: 'utf8' });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const assertRefused = (path: string, pattern: RegExp) => assertInputError(inspect(path), pattern);

async function scratch(name: string, bytes: Uint8Array | string): Promise<string> {
  const path = join(work, name);
  await writeFile(path, bytes);
  return path;
}

/** A safetensors file from a header object and `dataLength` data bytes. */
function safetensors(header: object, dataLength: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32). */
function randomBytes(n: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

test('a well-formed file succeeds through the same CLI path', () => {
  const { code, stdout } = inspect(join(FIXTURES, 'tiny-llava15/model.safetensors'));
  assert.equal(code, 0);
  const listing = JSON.parse(stdout);
  assert.equal(listing.format, 'safetensors');
  assert.deepEqual(listing.tensors.find((t: { name: string }) => t.name === 'multi_modal_projector.linear_1.weight'),
    { name: 'multi_modal_projector.linear_1.weight', dtype: 'F16', shape: [64, 48] });
});

test('empty, random and missing files', async () => {
  assertRefused(await scratch('empty.safetensors', ''), /empty file/);
  assertRefused(await scratch('empty.bin', ''), /empty file/);
  assertRefused(await scratch('random.bin', randomBytes(4096)), /not a checkpoint/);
  assertRefused(await scratch('random.safetensors', randomBytes(4096)), /header length .* (exceeds|runs past)/);
  assertRefused(join(work, 'does-not-exist.bin'), /cannot open .*does-not-exist\.bin: ENOENT/);
});

test('safetensors headers that lie', async () => {
  const f32 = (shape: number[], offsets: number[]) => ({ dtype: 'F32', shape, data_offsets: offsets });
  const original = await readFile(join(FIXTURES, 'tiny-llama/model.safetensors'));
  assertRefused(await scratch('truncated.safetensors', original.subarray(0, original.length >> 1)), /'[^']+': data_offsets \[\d+, \d+\] run past the end of the data/);
  assertRefused(await scratch('header-cut.safetensors', original.subarray(0, 100)), /header length \d+ runs past the end/);
  assertRefused(await scratch('offsets.safetensors', safetensors({ w: f32([2, 2], [0, 16]) }, 8)), /tensor 'w': data_offsets \[0, 16\] run past the end of the data \(8 bytes\)/);
  assertRefused(await scratch('overlap.safetensors', safetensors({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12)), /'a' and 'b' overlap/);
  assertRefused(await scratch('shape.safetensors', safetensors({ w: f32([3, 2], [0, 16]) }, 16)), /'w': F32 \[3, 2\] needs 24 bytes but data_offsets \[0, 16\] hold 16/);
  assertRefused(await scratch('dtype.safetensors', safetensors({ w: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, 4)), /'w': unsupported dtype "F8_E4M3"/);
  assertRefused(await scratch('negative.safetensors', safetensors({ w: f32([-1], [0, 4]) }, 4)), /'w': shape \[-1\] is not a list of non-negative integers/);
  assertRefused(await scratch('huge-shape.safetensors', safetensors({ w: f32([2 ** 40, 2 ** 40], [0, 4]) }, 4)), /'w': shape .* is too large/);
  assertRefused(await scratch('reversed.safetensors', safetensors({ w: f32([1], [4, 0]) }, 4)), /'w': data_offsets \[4,0\] is not \[begin, end\]/);
  assertRefused(await scratch('metadata.safetensors', safetensors({ __metadata__: { step: 3 } }, 0)), /__metadata__ is not a map of strings/);
  assertRefused(await scratch('array.safetensors', safetensors([1, 2], 0)), /header is not a JSON object/);
  const notJson = safetensors({ w: f32([1], [0, 4]) }, 4);
  notJson[9] = 0x7b; // '{{' …
  assertRefused(await scratch('not-json.safetensors', notJson), /header is not valid UTF-8 JSON/);
  const bigHeader = new Uint8Array(16);
  new DataView(bigHeader.buffer).setBigUint64(0, 1n << 40n, true);
  bigHeader[8] = 0x7b;
  assertRefused(await scratch('big-header.safetensors', bigHeader), /header length 1099511627776 exceeds 100000000 bytes/);
});

test('torch zip archives that are cut or inconsistent, and the legacy format', async () => {
  const original = await readFile(join(FIXTURES, 'tiny-lavin/llama/consolidated.00.pth'));
  assertRefused(await scratch('truncated.pth', original.subarray(0, original.length >> 1)), /not a complete zip archive/);
  // Cut the archive inside the central directory: the record still claims entries that are gone.
  const eocd = original.lastIndexOf(Buffer.from('PK\x05\x06', 'latin1'));
  const cut = Buffer.concat([original.subarray(0, eocd - 200), original.subarray(eocd)]);
  assertRefused(await scratch('cut-directory.pth', cut), /zip central directory|outside the file/);
  assertRefused(join(FIXTURES, 'io/legacy.pt'), /bare pickle \(the legacy pre-1\.6 torch\.save format\) is not supported and was not loaded; .*re-save it with torch >= 1\.6/);
  // A storage record shorter than the numel its persistent id claims.
  const lying = Buffer.from(await readFile(join(FIXTURES, 'io/bf16-sharded/pytorch_model-00002-of-00002.bin')));
  const pid = lying.indexOf(Buffer.from('lm_head.weight', 'latin1'));
  assert.ok(pid > 0);
  const numel = lying.indexOf(Buffer.from([0x4b, 20]), pid); // BININT1 20: the storage's 5x4 elements
  lying[numel + 1] = 21;
  assertRefused(await scratch('lying-numel.bin', lying), /storage \S+ claims 21 BF16 elements but its record holds 40 bytes/);
});

test('malicious pickles are refused and nothing runs', async () => {
  const cases: Record<string, RegExp> = {
    'posix-system.pth': /refusing to call posix\.system/,
    'os-system.pth': /refusing to call os\.system/,
    'eval.pth': /refusing to call builtins\.eval/,
    'exec-proto0.pth': /refusing to call builtins\.exec/,
    'subprocess-popen.pth': /refusing to call subprocess\.Popen/,
    'getattr.pth': /refusing to call builtins\.getattr/,
    'build-global.pth': /refusing to BUILD os\.system/,
    'newobj-popen.pth': /refusing to call subprocess\.Popen/,
    'inst-system.pth': /refusing to call os\.system/,
    'unknown-global.pth': /refusing to call mypackage\.helpers\.load_weights/,
    'evil-tensors.pth': /refusing to call posix\.system/,
  };
  assert.deepEqual(Object.keys(cases).sort(), (await readdir(join(FIXTURES, 'io/malicious'))).sort());
  for (const [name, pattern] of Object.entries(cases)) {
    assertRefused(join(FIXTURES, 'io/malicious', name), pattern);
    assert.equal(existsSync(join(work, MARKER)), false, `${name} created the marker`);
  }
  // A bare pickle (no zip) is not even unpickled.
  assertRefused(await scratch('bare.pkl', Buffer.from('\x80\x02cposix\nsystem\nX\x05\x00\x00\x00touch\x85R.', 'latin1')), /bare pickle .* was not loaded/);
  assert.equal(existsSync(join(work, MARKER)), false);
});

test('usage errors', () => {
  const run = spawnSync(process.execPath, [join(ROOT, 'bin/egret'), 'inspect'], { cwd: work, encoding: 'utf8' });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /^error: usage: egret inspect PATH \[--json\]\n$/);
});
