import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpointFile } from '../src/io/checkpoint.js';
import { RandomAccessFile } from '../src/io/file.js';
import { ZipArchive } from '../src/io/zip.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const GAP = 5 * 2 ** 30; // a hole: the file is sparse, nothing is written there

/**
 * Rewrites a torch.save archive as ZIP64 with its storage records placed past 5 GiB (a sparse file), the way a
 * multi-GB checkpoint lays them out. Local headers and data as in APPNOTE 4.3.7; central directory offsets
 * past 4 GiB go in the ZIP64 extra field (4.5.3); ZIP64 end records (4.3.14-4.3.15).
 */
async function writeZip64(records: { name: string; data: Uint8Array }[], path: string): Promise<void> {
  const file = await open(path, 'w');
  const central: Buffer[] = [];
  let position = 0;
  for (const [i, { name, data }] of records.entries()) {
    if (i === 1) position += GAP;
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    await file.write(Buffer.concat([local, nameBytes, data]), 0, 30 + nameBytes.length + data.length, position);
    const entry = Buffer.alloc(46 + 12);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(45, 4);
    entry.writeUInt16LE(45, 6);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt16LE(12, 30);
    entry.writeUInt32LE(0xffffffff, 42);
    central.push(Buffer.concat([entry.subarray(0, 46), nameBytes, zip64Extra(position)]));
    position += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(56 + 20 + 22);
  end.writeUInt32LE(0x06064b50, 0);
  end.writeBigUInt64LE(44n, 4);
  end.writeBigUInt64LE(BigInt(records.length), 24);
  end.writeBigUInt64LE(BigInt(records.length), 32);
  end.writeBigUInt64LE(BigInt(directory.length), 40);
  end.writeBigUInt64LE(BigInt(position), 48);
  end.writeUInt32LE(0x07064b50, 56);
  end.writeBigUInt64LE(BigInt(position + directory.length), 64);
  end.writeUInt32LE(1, 72);
  end.writeUInt32LE(0x06054b50, 76);
  end.writeUInt16LE(0xffff, 84);
  end.writeUInt16LE(0xffff, 86);
  end.writeUInt32LE(0xffffffff, 88);
  end.writeUInt32LE(0xffffffff, 92);
  await file.write(Buffer.concat([directory, end]), 0, directory.length + end.length, position);
  await file.close();
}

function zip64Extra(offset: number): Buffer {
  const extra = Buffer.alloc(12);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(8, 2);
  extra.writeBigUInt64LE(BigInt(offset), 4);
  return extra;
}

test('a ZIP64 torch archive with records past 5 GiB reads by offset with modest memory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-zip64-'));
  const source = join(FIXTURES, 'io/bf16-sharded/pytorch_model-00002-of-00002.bin');
  try {
    const original = await ZipArchive.open(await RandomAccessFile.open(source));
    const prefix = 'pytorch_model-00002-of-00002/';
    const records = await Promise.all([...original.entries.values()].map(async (entry) =>
      ({ name: 'big/' + entry.name.slice(prefix.length), data: await original.readWhole(entry) })));
    await original.file.close();
    records.sort((a, b) => Number(b.name.endsWith('data.pkl')) - Number(a.name.endsWith('data.pkl'))); // data.pkl first, storages after the gap
    const path = join(dir, 'big.pth');
    await writeZip64(records, path);

    const rssBefore = process.memoryUsage().rss;
    const [big, small] = await Promise.all([openCheckpointFile(path), openCheckpointFile(source)]);
    try {
      assert.deepEqual(big.list(), small.list());
      for (const { name } of small.list()) assert.deepEqual(await big.read(name), await small.read(name), name);
      assert.deepEqual(await big.readFloat32('lm_head.weight'), await small.readFloat32('lm_head.weight'));
    } finally {
      await Promise.all([big.close(), small.close()]);
    }
    assert.ok(process.memoryUsage().rss - rssBefore < 256 * 2 ** 20, 'the 5 GiB file was not read whole');
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a safetensors tensor past 5 GiB of other data is read by offset', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-large-'));
  try {
    const header = Buffer.from(JSON.stringify({
      skipped: { dtype: 'U8', shape: [GAP], data_offsets: [0, GAP] },
      w: { dtype: 'BF16', shape: [2], data_offsets: [GAP, GAP + 4] },
    }));
    const path = join(dir, 'big.safetensors');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    await writeFile(path, Buffer.concat([length, header]));
    const file = await open(path, 'r+');
    await file.write(Uint8Array.of(0x80, 0x3f, 0x49, 0xc0), 0, 4, 8 + header.length + GAP); // bf16 1, -3.140625
    await file.close();
    const rssBefore = process.memoryUsage().rss;
    const source = await openCheckpointFile(path);
    try {
      assert.deepEqual(source.info('skipped').shape, [GAP]);
      assert.deepEqual([...await source.readFloat32('w')], [1, -3.140625]);
    } finally {
      await source.close();
    }
    assert.ok(process.memoryUsage().rss - rssBefore < 256 * 2 ** 20, 'the 5 GiB file was not read whole');
  } finally {
    await rm(dir, { recursive: true });
  }
});
