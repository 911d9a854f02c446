/**
 * Writes an HF-layout LLaMA checkpoint in Meta's layout (params.json + consolidated.NN.pth), optionally split
 * into model-parallel shards. Written from Meta's llama/model.py and transformers' convert_llama_weights_to_hf.py,
 * independently of src/models/llama/layout.ts, so that tests check the loader against them rather than against
 * itself. The shard files are safetensors containers under Meta's file names: the reader goes by content, and
 * these tests are about names, rows and splits.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { writeSafetensors } from '../../src/io/safetensors-write.js';

/**
 * HF leaf → [Meta leaf, split dim]: fairscale's ColumnParallelLinear splits dim 0 (output features),
 * RowParallelLinear dim 1, ParallelEmbedding dim 1 (embedding width); null = whole in every shard.
 */
const LAYER_LEAVES: Record<string, [string, number | null]> = {
  'self_attn.q_proj.weight': ['attention.wq.weight', 0],
  'self_attn.k_proj.weight': ['attention.wk.weight', 0],
  'self_attn.v_proj.weight': ['attention.wv.weight', 0],
  'self_attn.o_proj.weight': ['attention.wo.weight', 1],
  'mlp.gate_proj.weight': ['feed_forward.w1.weight', 0],
  'mlp.down_proj.weight': ['feed_forward.w2.weight', 1],
  'mlp.up_proj.weight': ['feed_forward.w3.weight', 0],
  'input_layernorm.weight': ['attention_norm.weight', null],
  'post_attention_layernorm.weight': ['ffn_norm.weight', null],
};
const TOP_LEVEL: Record<string, [string, number | null]> = {
  'model.embed_tokens.weight': ['tok_embeddings.weight', 1],
  'model.norm.weight': ['norm.weight', null],
  'lm_head.weight': ['output.weight', 0],
};

interface F32Tensor { dtype: 'F32'; shape: number[]; data: Float32Array }

/** Undoes convert_llama_weights_to_hf's permute of wq/wk: Meta row (head, 2i + half) = HF row (head, half, i). */
function toInterleavedRows(data: Float32Array, heads: number, rows: number, cols: number): Float32Array {
  const dim = rows / heads;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < dim / 2; i++) {
        const hf = h * dim + half * (dim / 2) + i;
        const meta = h * dim + 2 * i + half;
        out.set(data.subarray(hf * cols, (hf + 1) * cols), meta * cols);
      }
    }
  }
  return out;
}

/** Slice `part` of `parts` of a row-major tensor along `dim`. */
function slice(t: F32Tensor, dim: number, part: number, parts: number): F32Tensor {
  const shape = t.shape.map((d, j) => (j === dim ? d / parts : d));
  const outer = t.shape.slice(0, dim).reduce((a, b) => a * b, 1);
  const run = shape.slice(dim).reduce((a, b) => a * b, 1);
  const data = new Float32Array(outer * run);
  for (let o = 0; o < outer; o++) data.set(t.data.subarray((o * parts + part) * run, (o * parts + part + 1) * run), o * run);
  return { dtype: 'F32', shape, data };
}

/** Writes params.json and `shards` consolidated.NN.pth files for the HF LLaMA in `hfDir` into `outDir`. */
export async function writeMetaLlama(hfDir: string, outDir: string, opts: { heads: number; kvHeads?: number; params: object; shards?: number }): Promise<void> {
  const shards = opts.shards ?? 1;
  const hf = await openCheckpoint(join(hfDir, 'model.safetensors'));
  const files: Record<string, F32Tensor>[] = Array.from({ length: shards }, () => ({}));
  for (const { name, shape } of hf.list()) {
    const layer = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
    const [leaf, dim] = layer ? LAYER_LEAVES[layer[2]!]! : TOP_LEVEL[name]!;
    const meta = layer ? `layers.${layer[1]}.${leaf}` : leaf;
    let data = await hf.readFloat32(name);
    if (leaf === 'attention.wq.weight' || leaf === 'attention.wk.weight') {
      data = toInterleavedRows(data, leaf === 'attention.wq.weight' ? opts.heads : opts.kvHeads ?? opts.heads, shape[0]!, shape[1]!);
    }
    const whole: F32Tensor = { dtype: 'F32', shape, data };
    files.forEach((file, i) => (file[meta] = dim === null ? whole : slice(whole, dim, i, shards)));
  }
  await hf.close();
  for (const [i, tensors] of files.entries()) await writeSafetensors(join(outDir, `consolidated.${String(i).padStart(2, '0')}.pth`), tensors);
  await writeFile(join(outDir, 'params.json'), JSON.stringify(opts.params));
}
