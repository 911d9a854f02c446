// Grouped-query attention and tied embeddings (issue #3), each checked against an equivalent model that computes
// the same function the plain way: GQA against the same weights with every KV head repeated for its query heads
// (transformers repeat_kv), tied embeddings against an untied head holding a copy of the embedding table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { writeSafetensors, type TensorToWrite } from '../src/io/safetensors-write.js';
import { CausalLM, openLlama } from '../src/models/llama/load.js';
import { InputError } from '../src/errors.js';

const DIR = 'test/fixtures/tiny-llama';
const HEAD_DIM = 16;

/** Writes an HF LLaMA dir from tiny-llama's weights, `edit` changing tensors and config. */
async function variant(root: string, name: string, edit: (t: Record<string, TensorToWrite>, cfg: Record<string, unknown>) => void): Promise<string> {
  const src = await openCheckpoint(`${DIR}/model.safetensors`);
  const tensors: Record<string, TensorToWrite> = {};
  for (const { name: n, shape } of src.list()) tensors[n] = { dtype: 'F32', shape, data: await src.readFloat32(n) };
  await src.close();
  const cfg = JSON.parse(await readFile(`${DIR}/config.json`, 'utf8')) as Record<string, unknown>;
  edit(tensors, cfg);
  const dir = join(root, name);
  await mkdir(dir);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  await writeFile(join(dir, 'config.json'), JSON.stringify(cfg));
  await copyFile(`${DIR}/tokenizer.model`, join(dir, 'tokenizer.model'));
  return dir;
}

/** Rows of the given heads of a [heads·HEAD_DIM, hidden] projection, in that order. */
function headRows(t: TensorToWrite, heads: readonly number[]): TensorToWrite {
  const cols = t.shape[1]!;
  const src = t.data as Float32Array;
  const out = new Float32Array(heads.length * HEAD_DIM * cols);
  heads.forEach((h, i) => out.set(src.subarray(h * HEAD_DIM * cols, (h + 1) * HEAD_DIM * cols), i * HEAD_DIM * cols));
  return { dtype: 'F32', shape: [heads.length * HEAD_DIM, cols], data: out };
}

async function logits(dir: string, ids: number[]): Promise<Float32Array> {
  const weights = await openLlama(dir);
  const lm = await CausalLM.build(weights, { threads: 1 });
  await weights.source.close();
  try {
    const positions = ids.map((_, i) => i);
    return (await lm.decoder.forward(lm.decoder.newCache(1), { embeds: lm.embed(ids), seq: ids.length, counts: [ids.length], positions: [positions], logitRows: [positions] })).logits;
  } finally {
    await lm.dispose();
  }
}

function assertClose(a: Float32Array, b: Float32Array): void {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= 1e-5, `max abs difference ${worst}`);
}

test('grouped-query attention (2 KV heads for 4 query heads) equals repeating each KV head for its query heads', async () => {
  const root = await mkdtemp(join(tmpdir(), 'egret-gqa-'));
  try {
    const kvHeadsKept = [0, 2];
    const gqa = await variant(root, 'gqa', (t, cfg) => {
      for (let i = 0; i < 4; i++) for (const p of ['k', 'v']) t[`model.layers.${i}.self_attn.${p}_proj.weight`] = headRows(t[`model.layers.${i}.self_attn.${p}_proj.weight`]!, kvHeadsKept);
      cfg['num_key_value_heads'] = 2;
    });
    // repeat_kv: query heads 0, 1 read KV head 0 (stored head 0); query heads 2, 3 read KV head 1 (stored head 2).
    const repeated = await variant(root, 'mha', (t) => {
      for (let i = 0; i < 4; i++) for (const p of ['k', 'v']) t[`model.layers.${i}.self_attn.${p}_proj.weight`] = headRows(t[`model.layers.${i}.self_attn.${p}_proj.weight`]!, [0, 0, 2, 2]);
    });
    const ids = [1, 273, 271, 289, 279, 276, 331, 323];
    assertClose(await logits(gqa, ids), await logits(repeated, ids));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('tied word embeddings (no lm_head tensor) equal an untied head that copies the embedding table', async () => {
  const root = await mkdtemp(join(tmpdir(), 'egret-tied-'));
  try {
    const tied = await variant(root, 'tied', (t, cfg) => {
      delete t['lm_head.weight'];
      cfg['tie_word_embeddings'] = true;
    });
    const untied = await variant(root, 'untied', (t) => {
      t['lm_head.weight'] = t['model.embed_tokens.weight']!;
    });
    const ids = [1, 13, 300, 198, 178];
    assertClose(await logits(tied, ids), await logits(untied, ids));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a bfloat16 checkpoint keeps its embedding table in bfloat16 (half the memory) and computes as its float32 values do', async () => {
  const root = await mkdtemp(join(tmpdir(), 'egret-bf16-'));
  try {
    // The same values both ways: tiny-llama rounded to bfloat16, stored as BF16 and as F32.
    const rounded = (t: TensorToWrite) => {
      const bits = new Uint32Array(Float32Array.from(t.data as Float32Array).buffer);
      for (let i = 0; i < bits.length; i++) bits[i] = (bits[i]! + 0x7fff + ((bits[i]! >>> 16) & 1)) & 0xffff0000;
      return new Float32Array(bits.buffer);
    };
    const asF32 = await variant(root, 'f32', (t) => {
      for (const [n, x] of Object.entries(t)) t[n] = { ...x, data: rounded(x) };
    });
    const asBf16 = await variant(root, 'bf16', (t, cfg) => {
      for (const [n, x] of Object.entries(t)) t[n] = { dtype: 'BF16', shape: x.shape, data: Uint16Array.from(new Uint32Array(rounded(x).buffer), (b) => b >>> 16) };
      cfg['torch_dtype'] = 'bfloat16';
    });
    const weights = await openLlama(asBf16);
    const lm = await CausalLM.build(weights, { threads: 1 });
    await weights.source.close();
    assert.ok(lm.embedTable instanceof Uint16Array, 'the table stays in bfloat16');
    const ids = [1, 13, 300, 198, 178];
    const f32 = await openLlama(asF32);
    const reference = await CausalLM.build(f32, { threads: 1 });
    await f32.source.close();
    assert.deepEqual(lm.embed(ids), reference.embed(ids), 'rows widen exactly');
    await Promise.all([lm.dispose(), reference.dispose()]);
    assert.deepEqual(await logits(asBf16, ids), await logits(asF32, ids));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('inconsistent geometry in config.json is an input error, not a failure inside the graph', async () => {
  const root = await mkdtemp(join(tmpdir(), 'egret-badcfg-'));
  try {
    const noLayers = await variant(root, 'no-layers', (_, cfg) => { cfg['num_hidden_layers'] = 0; });
    await assert.rejects(openLlama(noLayers), (e: Error) => e instanceof InputError && /'num_hidden_layers' must be a positive integer, got 0/.test(e.message));
    const oddHeads = await variant(root, 'odd-heads', (_, cfg) => { cfg['num_attention_heads'] = 3; cfg['num_key_value_heads'] = 3; });
    await assert.rejects(openLlama(oddHeads), (e: Error) => e instanceof InputError && /head dim .* must be an even integer/.test(e.message));
    const uneven = await variant(root, 'uneven-kv', (_, cfg) => { cfg['num_key_value_heads'] = 3; });
    await assert.rejects(openLlama(uneven), (e: Error) => e instanceof InputError && /4 attention heads cannot share 3 key\/value heads/.test(e.message));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
