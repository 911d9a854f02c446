import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../../errors.js';
import { Graph } from '../../graph/ir.js';
import { WeightScope, identityLayout, type WeightLayout } from '../../graph/weights.js';
import { openCheckpoint, openCheckpointFile, type TensorSource } from '../../io/checkpoint.js';
import { openSplitShards } from '../../io/split-shards.js';
import { Session, type LoadProgress, type ModelCache } from '../../runtime/session.js';
import { Decoder } from '../decoder.js';
import type { ComputeDtype } from '../linear.js';
import { llamaConfigFromHf, llamaConfigFromMeta, readJson, type LlamaConfig } from './config.js';
import { buildDecoderGraph, type DecoderGraphOptions } from './graph.js';
import { metaLayout, metaShardSplit } from './layout.js';

/** A LLaMA decoder's weights and geometry, found in an HF or Meta directory (or inside a multimodal one). */
export interface LanguageModelWeights {
  config: LlamaConfig;
  source: TensorSource;
  layout: WeightLayout;
}

export interface BuildOptions {
  dtype?: ComputeDtype;
  threads?: number;
  /** Keep ORT's optimised decoder on disk (see Session.fromGraph): `key` names the checkpoint and the options. */
  cache?: ModelCache;
  progress?: (event: LoadProgress) => void;
  /** A transformation of each layer's attention input (see DecoderGraphOptions). */
  attentionInput?: DecoderGraphOptions['attentionInput'];
}

/** Opens a text-only LLaMA: HF layout (config.json model_type llama) or Meta's (params.json + consolidated.*.pth). */
export async function openLlama(dir: string): Promise<LanguageModelWeights> {
  if (await isFile(join(dir, 'config.json'))) {
    const cfg = await readJson(join(dir, 'config.json'));
    if (cfg['model_type'] !== 'llama') throw new InputError(`${dir}/config.json: model_type '${String(cfg['model_type'])}' is not a LLaMA model`);
    return { config: llamaConfigFromHf(cfg, `${dir}/config.json`), source: await openCheckpoint(dir), layout: identityLayout };
  }
  if (await isFile(join(dir, 'params.json'))) return openMetaLlama(dir);
  throw new InputError(`${dir}: not a model directory (no config.json or params.json)`);
}

export async function openMetaLlama(dir: string, prefix = ''): Promise<LanguageModelWeights> {
  const params = await readJson(join(dir, 'params.json'));
  const shards = (await readdir(dir)).filter((n) => /^consolidated\.\d+\.pth$/.test(n))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  if (shards.length === 0) throw new InputError(`${dir}: no consolidated.NN.pth beside params.json`);
  if (shards.some((n, i) => Number(n.split('.')[1]) !== i)) throw new InputError(`${dir}: model-parallel shards ${shards.join(', ')} are not numbered 00 to ${shards.length - 1}`);
  const paths = shards.map((n) => join(dir, n));
  const source = paths.length === 1 ? await openCheckpointFile(paths[0]!) : await openSplitShards(dir, paths, metaShardSplit);
  const embed = source.info(`${prefix}tok_embeddings.weight`).shape;
  const w1 = source.info(`${prefix}layers.0.feed_forward.w1.weight`).shape;
  const config = llamaConfigFromMeta(params, `${dir}/params.json`, { vocab: embed[0]!, intermediate: w1[0]! });
  return { config, source, layout: metaLayout(config.heads, config.kvHeads, prefix) };
}

/** A decoder ready to run, with its embedding table held in memory (token embeddings are looked up in TypeScript). */
export class CausalLM {
  private constructor(
    readonly config: LlamaConfig,
    readonly decoder: Decoder,
    /** [vocab, hidden]: float32, or bfloat16 bits as the checkpoint stores them (half the memory, exact). */
    readonly embedTable: Float32Array | Uint16Array,
  ) {}

  static async build(weights: LanguageModelWeights, opts: BuildOptions = {}): Promise<CausalLM> {
    const { config, source, layout } = weights;
    const graph = new Graph('llama');
    const scope = new WeightScope(graph, source, '', layout);
    buildDecoderGraph(config, scope, { dtype: opts.dtype ?? 'fp32', ...(opts.attentionInput ? { attentionInput: opts.attentionInput } : {}) });
    const embedTable = await readEmbedTable(scope, 'model.embed_tokens.weight');
    // Weights are read lazily: on a cache hit only the embedding table above is read from the checkpoint.
    const session = await Session.fromGraph(graph, {
      threads: opts.threads,
      ...(opts.progress ? { progress: opts.progress } : {}),
      ...(opts.cache ? { cache: { ...opts.cache, key: `${opts.cache.key}|decoder` } } : {}),
    });
    return new CausalLM(config, new Decoder(config, session), embedTable);
  }

  /** Embeddings of token ids, [ids.length, hidden]. */
  embed(ids: readonly number[]): Float32Array {
    const d = this.config.hidden;
    const out = new Float32Array(ids.length * d);
    const table = this.embedTable;
    const bits = table instanceof Uint16Array ? new Uint32Array(out.buffer) : undefined;
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocab) throw new InputError(`token id ${id} is outside the vocabulary (0..${this.config.vocab - 1})`);
      if (!bits) return out.set((table as Float32Array).subarray(id * d, (id + 1) * d), i * d);
      // bfloat16 is the top half of a float32 (as in io/dtype.ts).
      for (let j = 0; j < d; j++) bits[i * d + j] = table[id * d + j]! << 16;
    });
    return out;
  }

  async dispose(): Promise<void> {
    await this.decoder.session.dispose();
  }
}

/**
 * The token embedding table, kept in the checkpoint's bfloat16 when it is stored so (a 7B model's is 262 MB
 * instead of 524 MB in float32; looking a row up widens it exactly), else as float32.
 */
async function readEmbedTable(scope: WeightScope, leaf: string): Promise<Float32Array | Uint16Array> {
  const name = scope.name(leaf);
  const { dtype, shape } = scope.source.info(name);
  if (dtype !== 'BF16' || scope.layout.rowOrder?.(name, shape)) return scope.read(leaf);
  const bytes = await scope.source.read(name);
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}
