// The torch.save writer: what it writes reads back through egret's own reader (tensors, dicts, OrderedDicts,
// argparse Namespaces), its zip is well formed (CRCs, 64-byte aligned data as torch writes it), and a failed write
// leaves nothing behind. (torch.load of its output was checked by hand with Debian's python3-torch 1.13.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { openCheckpointFile } from '../src/io/checkpoint.js';
import { PyDict, PyObject } from '../src/io/pickle.js';
import { PytorchFile } from '../src/io/pytorch.js';
import { tensor, torchSave } from '../src/io/torch-save.js';
import { InputError } from '../src/errors.js';

test('torchSave: a LaVIN-style checkpoint reads back with its tensors, epoch and Namespace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-torch-save-'));
  try {
    const path = join(dir, 'checkpoint-3.pth');
    const weight = Float32Array.from({ length: 24 }, (_, i) => i / 7 - 1);
    const half = new Uint16Array([0x3c00, 0xc000]); // 1, -2 in float16
    await torchSave(path, {
      model: { kind: 'ordered', entries: { 'module.layers.0.adapter_attn.conv_A.weight': tensor('F32', [2, 3, 4], weight), 'module.h': tensor('F16', [2], half), 'module.ids': tensor('I64', [2], new BigInt64Array([5n, -7n])) } },
      epoch: 3,
      args: { kind: 'namespace', fields: { temperature: 10, lr: 0.001125, options: ['A', 'B'], clip_grad: null, big: 2 ** 40, negative: -3, flag: false } },
      pair: { kind: 'tuple', items: [1, 'two'] },
    });
    assert.deepEqual(readdirSync(dir), ['checkpoint-3.pth'], 'no temporary file left');
    const file = await openCheckpointFile(path);
    try {
      assert.deepEqual(file.list().map((t) => [t.name, t.dtype, t.shape]), [
        ['model.module.layers.0.adapter_attn.conv_A.weight', 'F32', [2, 3, 4]], ['model.module.h', 'F16', [2]], ['model.module.ids', 'I64', [2]],
      ]);
      assert.deepEqual(await file.readFloat32('model.module.layers.0.adapter_attn.conv_A.weight'), weight);
      assert.deepEqual(Array.from(await file.readFloat32('model.module.h')), [1, -2]);
      assert.deepEqual(Array.from(new BigInt64Array((await file.read('model.module.ids')).slice().buffer)), [5n, -7n]);
      assert.ok(file instanceof PytorchFile && file.root instanceof PyDict);
      const root = file.root.entries;
      assert.equal(root.get('epoch'), 3);
      assert.deepEqual(root.get('pair'), [1, 'two']);
      const args = root.get('args');
      assert.ok(args instanceof PyObject && args.className === 'argparse.Namespace' && args.state instanceof PyDict);
      assert.deepEqual(Object.fromEntries(args.state.entries), { temperature: 10, lr: 0.001125, options: ['A', 'B'], clip_grad: null, big: 2 ** 40, negative: -3, flag: false });
    } finally {
      await file.close();
    }

    // The zip: every member's CRC-32 right, data 64-byte aligned, stored uncompressed.
    const bytes = readFileSync(path);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let members = 0;
    for (let at = 0; view.getUint32(at, true) === 0x04034b50; members++) {
      const size = view.getUint32(at + 18, true);
      const dataStart = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
      assert.equal(view.getUint16(at + 8, true), 0, 'stored');
      assert.equal(dataStart % 64, 0, 'aligned');
      assert.equal(zlib.crc32(bytes.subarray(dataStart, dataStart + size)), view.getUint32(at + 14, true), 'crc');
      at = dataStart + size;
    }
    assert.equal(members, 3 + 3, 'data.pkl, byteorder, version and a storage per tensor');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('torchSave into a folder that does not exist: an InputError, no file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-torch-save-'));
  try {
    await assert.rejects(torchSave(join(dir, 'missing/x.pth'), { epoch: 1 }), (e: Error) => e instanceof InputError && /cannot write .*ENOENT/.test(e.message));
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
