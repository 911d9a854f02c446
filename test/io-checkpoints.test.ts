import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TensorSource, openCheckpoint, openCheckpointFile } from '../src/io/checkpoint.js';
import { type DType } from '../src/io/dtype.js';
import { PytorchFile } from '../src/io/pytorch.js';
import { inspectCheckpoint } from '../src/io/inspect.js';
import { PyObject, PyDict } from '../src/io/pickle.js';
import { InputError } from '../src/errors.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** Reference values written by test/fixtures/io/generate.py from torch.load / numpy (see its README). */
interface Expected { name: string; dtype: DType; shape: number[]; sum: number; first: number | null; last: number | null; values?: number[] }
const expected: Record<string, Expected[]> = JSON.parse(await readFile(join(FIXTURES, 'io/expected.json'), 'utf8'));

/** Tensor values as plain numbers, whatever the dtype. */
async function valuesOf(source: TensorSource, name: string): Promise<number[]> {
  const { dtype } = source.info(name);
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') return [...await source.readFloat32(name)];
  const bytes = await source.read(name);
  const buffer = bytes.slice().buffer;
  switch (dtype) {
    case 'F64': return [...new Float64Array(buffer)];
    case 'I64': return [...new BigInt64Array(buffer)].map(Number);
    case 'I32': return [...new Int32Array(buffer)];
    case 'I16': return [...new Int16Array(buffer)];
    case 'I8': return [...new Int8Array(buffer)];
    default: return [...bytes]; // U8, BOOL
  }
}

async function checkAgainstReference(path: string, key: string, format: TensorSource['format']) {
  const reference = expected[key]!;
  const source = await openCheckpoint(path);
  try {
    assert.equal(source.format, format);
    assert.deepEqual(source.list(), reference.map(({ name, dtype, shape }) => ({ name, dtype, shape })));
    for (const tensor of reference) {
      const values = await valuesOf(source, tensor.name);
      assert.equal(values.length, tensor.shape.reduce((a, b) => a * b, 1), tensor.name);
      assert.equal(values[0] ?? null, tensor.first, `${key} ${tensor.name} first`);
      assert.equal(values.at(-1) ?? null, tensor.last, `${key} ${tensor.name} last`);
      if (tensor.values) assert.deepEqual(values, tensor.values, `${key} ${tensor.name} values`);
      // The reference sum is exact (math.fsum); a float64 running sum errs by at most n·ulp of Σ|x|.
      const sum = values.reduce((a, b) => a + b, 0);
      const bound = values.reduce((a, b) => a + Math.abs(b), 0) * values.length * 2 ** -52;
      assert.ok(Math.abs(sum - tensor.sum) <= bound, `${key} ${tensor.name} sum ${sum} vs ${tensor.sum}`);
    }
  } finally {
    await source.close();
  }
}

test('tiny-llama model.safetensors (F32) matches an independent numpy reading', () =>
  checkAgainstReference(join(FIXTURES, 'tiny-llama'), 'tiny-llama/model.safetensors', 'safetensors'));

test('tiny-llava15 model.safetensors (F16) matches an independent numpy reading', () =>
  checkAgainstReference(join(FIXTURES, 'tiny-llava15/model.safetensors'), 'tiny-llava15/model.safetensors', 'safetensors'));

test('tiny-llava-hr sharded pytorch_model-*.bin through the index matches torch.load', () =>
  checkAgainstReference(join(FIXTURES, 'tiny-llava-hr'), 'tiny-llava-hr', 'pytorch'));

test('bf16 sharded pytorch_model-*.bin (plain dict pickles) matches torch.load', () =>
  checkAgainstReference(join(FIXTURES, 'io/bf16-sharded/pytorch_model.bin.index.json'), 'io/bf16-sharded', 'pytorch'));

test('Meta consolidated.00.pth in a directory matches torch.load', () =>
  checkAgainstReference(join(FIXTURES, 'tiny-lavin/llama'), 'tiny-lavin/llama/consolidated.00.pth', 'pytorch'));

test('LaVIN checkpoint-19.pth: module. prefixes under model, optimizer state, Namespace args', async () => {
  await checkAgainstReference(join(FIXTURES, 'tiny-lavin/lavin/checkpoint-19.pth'), 'tiny-lavin/lavin/checkpoint-19.pth', 'pytorch');
  const file = await openCheckpointFile(join(FIXTURES, 'tiny-lavin/lavin/checkpoint-19.pth'));
  try {
    assert.ok(file instanceof PytorchFile);
    assert.ok(file.has('model.module.adapter_proj.conv_A.weight'));
    assert.deepEqual(file.info('model.module.adapter_modality_embedding.weight').shape, [2, 64]);
    const root = file.root as PyDict;
    assert.equal(root.entries.get('epoch'), 19);
    const args = root.entries.get('args');
    assert.ok(args instanceof PyObject && args.className === 'argparse.Namespace');
    assert.equal((args.state as PyDict).entries.get('batch_size'), 4);
    assert.equal((args.state as PyDict).entries.get('llm_model'), '7B');
  } finally {
    await file.close();
  }
});

test('OpenAI CLIP state dict ViT-tiny.pt (fp16 and fp32 tensors) matches torch.load', () =>
  checkAgainstReference(join(FIXTURES, 'tiny-lavin/clip/ViT-tiny.pt'), 'tiny-lavin/clip/ViT-tiny.pt', 'pytorch'));

test('TorchScript ViT-tiny-jit.pt gives the state dict of torch.jit.load, with visual.* equal to ViT-tiny.pt', async () => {
  await checkAgainstReference(join(FIXTURES, 'tiny-lavin/clip/ViT-tiny-jit.pt'), 'tiny-lavin/clip/ViT-tiny-jit.pt', 'pytorch');
  const [jit, plain] = await Promise.all([openCheckpointFile(join(FIXTURES, 'tiny-lavin/clip/ViT-tiny-jit.pt')), openCheckpointFile(join(FIXTURES, 'tiny-lavin/clip/ViT-tiny.pt'))]);
  try {
    for (const { name, dtype } of plain.list()) {
      assert.equal(jit.info(name).dtype, dtype);
      assert.deepEqual(await jit.read(name), await plain.read(name), name);
    }
  } finally {
    await Promise.all([jit.close(), plain.close()]);
  }
});

test('strided views sharing one fp16 storage read as their own row-major elements', () =>
  checkAgainstReference(join(FIXTURES, 'io/views-fp16.pth'), 'io/views-fp16.pth', 'pytorch'));

test('missing tensors are InputErrors naming the tensor and file', async () => {
  const source = await openCheckpoint(join(FIXTURES, 'tiny-llama'));
  try {
    assert.throws(() => source.info('nope.weight'), (err: unknown) => err instanceof InputError && /'nope\.weight'.*model\.safetensors/.test(err.message));
    await assert.rejects(source.read('nope.weight'), InputError);
    await assert.rejects(source.readFloat32('nope.weight'), InputError);
  } finally {
    await source.close();
  }
});

test('readFloat32 converts F64 views and refuses integer tensors', async () => {
  const source = await openCheckpoint(join(FIXTURES, 'io/views-fp16.pth'));
  try {
    assert.deepEqual([...await source.readFloat32('doubles_t')], [0.1, -3, 1e-300, 2.5].map(Math.fround));
    await assert.rejects(source.readFloat32('strided_i64'), /tensor 'strided_i64' is I64, not a floating-point tensor/);
  } finally {
    await source.close();
  }
});

test('directories: several Meta shards are refused, an empty directory says what it looked for', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-io-'));
  try {
    await assert.rejects(openCheckpoint(dir), /no checkpoint found/);
    await assert.rejects(openCheckpoint(join(FIXTURES, 'tiny-lavin')), /no checkpoint found .*; found 2\)/);
    assert.equal((await inspectCheckpoint(join(FIXTURES, 'images'))).tensors.find((t) => t.name === 'decoded.tall')?.dtype, 'U8');
    await writeFile(join(dir, 'consolidated.00.pth'), '');
    await writeFile(join(dir, 'consolidated.01.pth'), '');
    await assert.rejects(openCheckpoint(dir), /2 model-parallel shards.*open each file/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('shapes and dtypes the fixture READMEs state', async () => {
  const listing = async (path: string) => {
    const source = await openCheckpoint(join(FIXTURES, path));
    try {
      return new Map(source.list().map((t) => [t.name, t]));
    } finally {
      await source.close();
    }
  };
  const hr = await listing('tiny-llava-hr');
  assert.equal(hr.size, 285);
  assert.equal([...hr.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0), 513797);
  assert.ok([...hr.values()].every((t) => t.dtype === 'F32'));
  assert.ok([...(await listing('tiny-llava15')).values()].every((t) => t.dtype === 'F16'));
  const llama = await listing('tiny-lavin/llama');
  assert.deepEqual(llama.get('layers.3.attention.inner_attention.rope.freqs'), { name: 'layers.3.attention.inner_attention.rope.freqs', dtype: 'F32', shape: [8] });
  assert.deepEqual(llama.get('layers.0.feed_forward.w1.weight')?.shape, [192, 64]);
  const clip = await listing('tiny-lavin/clip/ViT-tiny.pt');
  for (const name of ['visual.conv1.weight', 'visual.transformer.resblocks.0.attn.in_proj_weight', 'visual.transformer.resblocks.23.mlp.c_proj.bias', 'visual.proj']) assert.equal(clip.get(name)?.dtype, 'F16', name);
  for (const name of ['visual.class_embedding', 'visual.positional_embedding', 'visual.ln_pre.weight', 'visual.transformer.resblocks.5.ln_2.bias']) assert.equal(clip.get(name)?.dtype, 'F32', name);
  assert.deepEqual(clip.get('visual.conv1.weight')?.shape, [32, 3, 32, 32]);
  const lavin = await listing('tiny-lavin/lavin/checkpoint-19.pth');
  const shape = (name: string) => lavin.get(`model.module.${name}`)?.shape;
  assert.deepEqual(shape('layers.0.adapter_attn.conv_A.weight'), [8, 64, 1]);
  assert.deepEqual(shape('layers.0.adapter_attn.conv_B.weight'), [64, 4, 1]);
  assert.deepEqual(shape('layers.3.adapter_attn.expert_weights.weight'), [2, 64]);
  assert.deepEqual(shape('backbone.visual.transformer.resblocks.0.adapter_attn.conv_D.weight'), [32, 4, 1]);
  assert.deepEqual(shape('adapter_proj.conv_A.weight'), [128, 32]);
  assert.deepEqual(shape('adapter_proj.conv_B.weight'), [64, 128]);
  assert.deepEqual(shape('adapter_modality_embedding.weight'), [2, 64]);
});

test('deflated tensor records are listed but refused when read', async () => {
  const source = await openCheckpointFile(join(FIXTURES, 'io/malformed/deflated.pth'));
  try {
    assert.deepEqual(source.info('lm_head.weight'), { name: 'lm_head.weight', dtype: 'BF16', shape: [5, 4] });
    await assert.rejects(source.read('lm_head.weight'), /'deflated\/data\/\d+' is compressed \(method 8\); tensor data must be stored uncompressed/);
  } finally {
    await source.close();
  }
});

test('a safetensors header whose length begins with the bytes "PK" is not taken for a zip', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-io-'));
  try {
    const headerLength = 0x4b50; // little-endian "PK"
    const json = JSON.stringify({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }).padEnd(headerLength, ' ');
    const file = Buffer.alloc(8 + headerLength + 4);
    file.writeBigUInt64LE(BigInt(headerLength));
    file.write(json, 8, 'latin1');
    file.writeUInt16LE(0x3c00, 8 + headerLength); // 1
    file.writeUInt16LE(0xc500, 8 + headerLength + 2); // -5
    await writeFile(join(dir, 'pk.safetensors'), file);
    const source = await openCheckpointFile(join(dir, 'pk.safetensors'));
    assert.deepEqual([...await source.readFloat32('w')], [1, -5]);
    await source.close();
  } finally {
    await rm(dir, { recursive: true });
  }
});
