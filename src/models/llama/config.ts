import { readFile } from 'node:fs/promises';
import { InputError } from '../../errors.js';

/** A LLaMA-family decoder's geometry, whichever layout it came from. */
export interface LlamaConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  rmsEps: number;
  ropeTheta: number;
  maxPositions: number;
  tiedEmbeddings: boolean;
  bosId: number;
  eosId: number;
}

type Json = Record<string, unknown>;

function num(obj: Json, key: string, where: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`${where}: '${key}' must be a number`);
  return v;
}

/** transformers' LlamaConfig (config.json, or the text_config of a llava-hf config). */
export function llamaConfigFromHf(cfg: Json, where: string): LlamaConfig {
  const hidden = num(cfg, 'hidden_size', where);
  const heads = num(cfg, 'num_attention_heads', where);
  if (cfg['rope_scaling'] != null) throw new InputError(`${where}: rope_scaling is not supported`);
  if (cfg['hidden_act'] !== undefined && cfg['hidden_act'] !== 'silu') throw new InputError(`${where}: hidden_act '${String(cfg['hidden_act'])}' is not supported (silu only)`);
  if (cfg['attention_bias'] === true || cfg['mlp_bias'] === true) throw new InputError(`${where}: attention/MLP biases are not supported`);
  return {
    hidden,
    layers: num(cfg, 'num_hidden_layers', where),
    heads,
    kvHeads: num(cfg, 'num_key_value_heads', where, heads),
    headDim: num(cfg, 'head_dim', where, hidden / heads),
    intermediate: num(cfg, 'intermediate_size', where),
    vocab: num(cfg, 'vocab_size', where),
    rmsEps: num(cfg, 'rms_norm_eps', where, 1e-6),
    ropeTheta: num(cfg, 'rope_theta', where, 10000),
    maxPositions: num(cfg, 'max_position_embeddings', where, 2048),
    tiedEmbeddings: cfg['tie_word_embeddings'] === true,
    bosId: num(cfg, 'bos_token_id', where, 1),
    eosId: num(cfg, 'eos_token_id', where, 2),
  };
}

/**
 * Meta's params.json (LLaMA-1/2 releases). vocab_size -1 means "the tokenizer's", so the caller passes the
 * vocabulary found in the weights; the FFN width is likewise read from the weights (w1's rows) rather than
 * re-derived from multiple_of / ffn_dim_multiplier.
 */
export function llamaConfigFromMeta(params: Json, where: string, fromWeights: { vocab: number; intermediate: number }): LlamaConfig {
  const hidden = num(params, 'dim', where);
  const heads = num(params, 'n_heads', where);
  return {
    hidden,
    layers: num(params, 'n_layers', where),
    heads,
    kvHeads: num(params, 'n_kv_heads', where, heads),
    headDim: hidden / heads,
    intermediate: fromWeights.intermediate,
    vocab: fromWeights.vocab,
    rmsEps: num(params, 'norm_eps', where, 1e-6),
    ropeTheta: num(params, 'rope_theta', where, 10000),
    maxPositions: num(params, 'max_seq_len', where, 2048),
    tiedEmbeddings: false,
    bosId: 1,
    eosId: 2,
  };
}

export async function readJson(path: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Json;
  } catch (err) {
    throw new InputError(`${path}: invalid JSON (${(err as Error).message})`);
  }
}
