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
  const config = join(dir, 'config.json');
  if (await stat(config).then(() => true, () => false)) return dir;
  await mkdir(dir, { recursive: true });
  log(`writing a random LLaMA (${layers} layers, hidden ${hidden}, vocab ${vocab}) to ${dir}`);
  await writeSafetensors(join(dir, 'model.safetensors'), randomLlamaTensors(shape));
  // config.json last: its presence says the directory is complete.
  await writeFile(config, JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'], ...llamaConfigKeys(shape) }, null, 2));
  return dir;
}

/**
 * The weights of a random LLaMA in HF names, each name prefixed with `prefix` (llava-hf keeps the LLM under
 * 'language_model.'). The same shape gives the same weights, whatever the prefix: multimodal models built on it
 * share their LLM.
 */
export function randomLlamaTensors(shape: RandomLlamaShape, prefix = ''): Record<string, TensorToWrite> {
  const { hidden, intermediate, layers, vocab } = shape;
  const tensors: Record<string, TensorToWrite> = {};
  let seed = SEED;
  const matrix = (rows: number, cols: number): TensorToWrite => ({ dtype: 'F32', shape: [rows, cols], data: normals(rows * cols, seed++, INIT_STD) });
  const ones = (n: number): TensorToWrite => ({ dtype: 'F32', shape: [n], data: new Float32Array(n).fill(1) });
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
