import { InputError } from '../../errors.js';
import { expectObject, readJsonFile } from '../../io/json.js';

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

/** A count (layers, heads, widths): a positive integer. */
function count(obj: Json, key: string, where: string, fallback?: number): number {
  const v = num(obj, key, where, fallback);
  if (!Number.isInteger(v) || v < 1) throw new InputError(`${where}: '${key}' must be a positive integer, got ${v}`);
  return v;
}

/** The geometry's own consistency, so that a bad config is an input error rather than a failure deep in the graph. */
function checkGeometry(c: LlamaConfig, where: string): LlamaConfig {
  if (c.heads % c.kvHeads !== 0) throw new InputError(`${where}: ${c.heads} attention heads cannot share ${c.kvHeads} key/value heads evenly`);
  if (!Number.isInteger(c.headDim) || c.headDim % 2 !== 0) throw new InputError(`${where}: head dim ${c.headDim} must be an even integer (hidden ${c.hidden} / ${c.heads} heads)`);
  return c;
}

/** transformers' LlamaConfig (config.json, or the text_config of a llava-hf config). */
export function llamaConfigFromHf(cfg: Json, where: string): LlamaConfig {
  const hidden = count(cfg, 'hidden_size', where);
  const heads = count(cfg, 'num_attention_heads', where);
  if (cfg['rope_scaling'] != null) throw new InputError(`${where}: rope_scaling is not supported`);
  if (cfg['hidden_act'] !== undefined && cfg['hidden_act'] !== 'silu') throw new InputError(`${where}: hidden_act '${String(cfg['hidden_act'])}' is not supported (silu only)`);
  if (cfg['attention_bias'] === true || cfg['mlp_bias'] === true) throw new InputError(`${where}: attention/MLP biases are not supported`);
  return checkGeometry({
    hidden,
    layers: count(cfg, 'num_hidden_layers', where),
    heads,
    kvHeads: count(cfg, 'num_key_value_heads', where, heads),
    headDim: num(cfg, 'head_dim', where, hidden / heads),
    intermediate: count(cfg, 'intermediate_size', where),
    vocab: count(cfg, 'vocab_size', where),
    rmsEps: num(cfg, 'rms_norm_eps', where, 1e-6),
    ropeTheta: num(cfg, 'rope_theta', where, 10000),
    maxPositions: count(cfg, 'max_position_embeddings', where, 2048),
    tiedEmbeddings: cfg['tie_word_embeddings'] === true,
    bosId: num(cfg, 'bos_token_id', where, 1),
    eosId: num(cfg, 'eos_token_id', where, 2),
  }, where);
}

/**
 * Meta's params.json (LLaMA-1/2 releases). vocab_size -1 means "the tokenizer's", so the caller passes the
 * vocabulary found in the weights; the FFN width is likewise read from the weights (w1's rows) rather than
 * re-derived from multiple_of / ffn_dim_multiplier.
 */
export function llamaConfigFromMeta(params: Json, where: string, fromWeights: { vocab: number; intermediate: number }): LlamaConfig {
  const hidden = count(params, 'dim', where);
  const heads = count(params, 'n_heads', where);
  return checkGeometry({
    hidden,
    layers: count(params, 'n_layers', where),
    heads,
    kvHeads: count(params, 'n_kv_heads', where, heads),
    headDim: hidden / heads,
    intermediate: fromWeights.intermediate,
    vocab: fromWeights.vocab,
    rmsEps: num(params, 'norm_eps', where, 1e-6),
    ropeTheta: num(params, 'rope_theta', where, 10000),
    maxPositions: num(params, 'max_seq_len', where, 2048),
    tiedEmbeddings: false,
    bosId: 1,
    eosId: 2,
  }, where);
}

/** A model's config.json or params.json: a JSON object. */
export async function readJson(path: string): Promise<Json> {
  return expectObject(await readJsonFile(path), path) as Json;
}
