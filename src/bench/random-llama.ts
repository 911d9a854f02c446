/**
 * A randomly initialised LLaMA in HF layout (config.json + model.safetensors) for the language-model suites,
 * written once into os.tmpdir() and reused by later runs (the directory name carries every parameter).
 * Weights are N(0, 0.02²) from a seeded generator (HF's initializer_range), norms 1; fp32 on disk.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-write.js';

export interface RandomLlamaShape {
  hidden: number;
  intermediate: number;
  heads: number;
  layers: number;
  vocab: number;
}

/** LLaMA-7B's layer geometry; layers and vocabulary are the caller's (2 layers ≈ 1.6 GB of fp32 layer weights). */
export const LLAMA_7B_LAYER = { hidden: 4096, intermediate: 11008, heads: 32 } as const;

const SEED = 20231;
/** HF's initializer_range: the standard deviation of every random matrix. */
export const INIT_STD = 0.02;

/** Normal values (Box–Muller over xorshift32): deterministic for a seed. */
export function normals(count: number, seed: number, std: number): Float32Array {
  const out = new Float32Array(count);
  let x = (Math.imul(seed, 0x9e3779b1) >>> 0) || 1;
  const uniform = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return (x + 0.5) / 2 ** 32;
  };
  for (let i = 0; i < count; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(t);
    if (i + 1 < count) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/** The model directory for `shape`, generated now if no earlier run left it. */
export async function randomLlamaDir(shape: RandomLlamaShape, log: (message: string) => void): Promise<string> {
  const { hidden, intermediate, heads, layers, vocab } = shape;
  const dir = join(tmpdir(), `egret-bench-llama-h${hidden}-i${intermediate}-a${heads}-l${layers}-v${vocab}-s${SEED}`);
  return writeRandomLlama(dir, shape, { dtype: 'F32', shards: 1 }, log);
}

/**
 * Writes a random LLaMA into `dir` unless an earlier run completed it there: one model.safetensors, or `shards`
 * files named and indexed as transformers' save_pretrained names them (model-00001-of-00003.safetensors and
 * model.safetensors.index.json), split by layers. Tensors are generated as each is written, so memory stays at
 * one tensor whatever the model's size.
 */
export async function writeRandomLlama(dir: string, shape: RandomLlamaShape, opts: { dtype: 'F32' | 'BF16'; shards: number }, log: (message: string) => void): Promise<string> {
  const config = join(dir, 'config.json');
  if (await stat(config).then(() => true, () => false)) return dir;
  await mkdir(dir, { recursive: true });
  log(`writing a random LLaMA (${shape.layers} layers, hidden ${shape.hidden}, vocab ${shape.vocab}, ${opts.dtype}, ${opts.shards} file${opts.shards > 1 ? 's' : ''}) to ${dir}`);
  const tensors = Object.entries(randomLlamaTensors(shape, '', opts.dtype));
  if (opts.shards === 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), Object.fromEntries(tensors));
  } else {
    // Layer i goes to shard ⌊i · shards / layers⌋; the embedding with the first layers, the final norm and head with the last.
    const shardOf = (name: string) => {
      const layer = /\.layers\.(\d+)\./.exec(name);
      if (layer) return Math.floor((Number(layer[1]) * opts.shards) / shape.layers);
      return name.includes('embed_tokens') ? 0 : opts.shards - 1;
    };
    const fileName = (s: number) => `model-${String(s + 1).padStart(5, '0')}-of-${String(opts.shards).padStart(5, '0')}.safetensors`;
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < opts.shards; s++) {
      const mine = tensors.filter(([name]) => shardOf(name) === s);
      for (const [name] of mine) weightMap[name] = fileName(s);
      log(`  ${fileName(s)}: ${mine.length} tensors`);
      await writeSafetensors(join(dir, fileName(s)), Object.fromEntries(mine), { format: 'pt' });
    }
    const totalSize = tensors.reduce((sum, [, t]) => sum + t.shape.reduce((a, b) => a * b, 1) * (opts.dtype === 'BF16' ? 2 : 4), 0);
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  }
  // config.json last: its presence says the directory is complete.
  const torchDtype = opts.dtype === 'BF16' ? 'bfloat16' : 'float32';
  await writeFile(config, JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'], ...llamaConfigKeys(shape), torch_dtype: torchDtype }, null, 2));
  return dir;
}

/**
 * A tokenizer.json for a random model of `vocab` tokens, so that commands can decode every id it generates:
 * <unk>, <s>, </s>, the 256 byte tokens (text encodes byte by byte: one token per ASCII character), then
 * '▁w<id>' words. Written unless present.
 */
export async function writeRandomTokenizer(dir: string, vocab: number): Promise<void> {
  const path = join(dir, 'tokenizer.json');
  if (await stat(path).then(() => true, () => false)) return;
  const pieces: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) pieces[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (let id = 259; id < vocab; id++) pieces[`\u2581w${id}`] = id;
  const special = ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, special: true }));
  await writeFile(path, JSON.stringify({
    version: '1.0', added_tokens: special, normalizer: null, pre_tokenizer: null, decoder: null,
    model: { type: 'BPE', vocab: pieces, merges: [], byte_fallback: true, unk_token: '<unk>', fuse_unk: true },
  }));
}

/** bfloat16 bits of float32 values, rounded to nearest even (as torch's .to(torch.bfloat16) rounds). */
export function toBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * The weights of a random LLaMA in HF names, each name prefixed with `prefix` (llava-hf keeps the LLM under
 * 'language_model.'). The same shape gives the same weights, whatever the prefix: multimodal models built on it
 * share their LLM.
 */
export function randomLlamaTensors(shape: RandomLlamaShape, prefix = '', dtype: 'F32' | 'BF16' = 'F32'): Record<string, TensorToWrite> {
  const { hidden, intermediate, layers, vocab } = shape;
  const tensors: Record<string, TensorToWrite> = {};
  let seed = SEED;
  const stored = (values: Float32Array) => (dtype === 'F32' ? values : toBfloat16(values));
  // Produced when written: a 7B model's tensors are never all in memory.
  const matrix = (rows: number, cols: number): TensorToWrite => {
    const s = seed++;
    return { dtype, shape: [rows, cols], data: () => stored(normals(rows * cols, s, INIT_STD)) };
  };
  const ones = (n: number): TensorToWrite => ({ dtype, shape: [n], data: () => stored(new Float32Array(n).fill(1)) });
  tensors[`${prefix}model.embed_tokens.weight`] = matrix(vocab, hidden);
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}model.layers.${i}`;
    for (const proj of ['q', 'k', 'v', 'o']) tensors[`${p}.self_attn.${proj}_proj.weight`] = matrix(hidden, hidden);
    tensors[`${p}.mlp.gate_proj.weight`] = matrix(intermediate, hidden);
    tensors[`${p}.mlp.up_proj.weight`] = matrix(intermediate, hidden);
    tensors[`${p}.mlp.down_proj.weight`] = matrix(hidden, intermediate);
    tensors[`${p}.input_layernorm.weight`] = ones(hidden);
    tensors[`${p}.post_attention_layernorm.weight`] = ones(hidden);
  }
  tensors[`${prefix}model.norm.weight`] = ones(hidden);
  tensors[`${prefix}lm_head.weight`] = matrix(vocab, hidden);
  return tensors;
}

/** transformers LlamaConfig keys of a random LLaMA (a config.json, or a llava-hf text_config). */
export function llamaConfigKeys(shape: RandomLlamaShape): Record<string, unknown> {
  const { hidden, intermediate, heads, layers, vocab } = shape;
  return {
    hidden_size: hidden, intermediate_size: intermediate, num_attention_heads: heads, num_key_value_heads: heads,
    num_hidden_layers: layers, vocab_size: vocab, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 4096,
    hidden_act: 'silu', tie_word_embeddings: false, torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2,
  };
}
