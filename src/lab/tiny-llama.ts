/**
 * The lab's tiny LLaMA as Meta releases LLaMA (LaVIN's base model): params.json and consolidated.00.pth with Meta's
 * tensor names and Meta's row order of wq/wk, so that egret's Meta loader (openLlama) and LaVIN's own code read it as
 * they read LLaMA-7B. Its tensors are described under HF names, which egret's model code uses, and renamed and
 * reordered on the way out through the same layout the loader reads them with (models/llama/layout.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { tensor, torchSave, type SavedValue } from '../io/torch-save.js';
import { llamaConfigFromMeta, type LlamaConfig } from '../models/llama/config.js';
import { buildDecoderGraph } from '../models/llama/graph.js';
import { metaLayout } from '../models/llama/layout.js';
import type { TensorSpec } from '../train/scratch.js';

export interface TinyLlamaShape {
  width: number;
  layers: number;
  heads: number;
  vocab: number;
  /** Meta's multiple_of: the FFN width is rounded up to it. */
  multipleOf: number;
}

const STD = 0.02;

/** llama/model.py FeedForward: hidden = multiple_of · ⌈int(2 · 4 · dim / 3) / multiple_of⌉, so Meta's code builds the same shapes. */
export function metaFfnWidth(width: number, multipleOf: number): number {
  const hidden = Math.trunc((2 * 4 * width) / 3);
  return multipleOf * Math.ceil(hidden / multipleOf);
}

/** params.json as Meta writes it (vocab_size -1: the tokenizer's). */
export function tinyLlamaParams(shape: TinyLlamaShape): Record<string, number> {
  return { dim: shape.width, multiple_of: shape.multipleOf, n_heads: shape.heads, n_layers: shape.layers, norm_eps: 1e-6, vocab_size: -1 };
}

export function tinyLlamaConfig(shape: TinyLlamaShape): LlamaConfig {
  return llamaConfigFromMeta(tinyLlamaParams(shape), 'params.json', { vocab: shape.vocab, intermediate: metaFfnWidth(shape.width, shape.multipleOf) });
}

/** Every tensor under its HF name with its initialisation (HF's N(0, 0.02²) linears and embeddings, norms at one). */
export function tinyLlamaTensors(shape: TinyLlamaShape): Map<string, TensorSpec> {
  const specs = new Map<string, TensorSpec>();
  const normal = (name: string, dims: number[]) => specs.set(name, { shape: dims, init: { normal: STD } });
  const ones = (name: string) => specs.set(name, { shape: [shape.width], init: { constant: 1 } });
  const d = shape.width;
  const ffn = metaFfnWidth(d, shape.multipleOf);
  normal('model.embed_tokens.weight', [shape.vocab, d]);
  for (let i = 0; i < shape.layers; i++) {
    const l = `model.layers.${i}`;
    for (const p of ['q', 'k', 'v', 'o']) normal(`${l}.self_attn.${p}_proj.weight`, [d, d]);
    normal(`${l}.mlp.gate_proj.weight`, [ffn, d]);
    normal(`${l}.mlp.up_proj.weight`, [ffn, d]);
    normal(`${l}.mlp.down_proj.weight`, [d, ffn]);
    ones(`${l}.input_layernorm.weight`);
    ones(`${l}.post_attention_layernorm.weight`);
  }
  ones('model.norm.weight');
  normal('lm_head.weight', [shape.vocab, d]);
  return specs;
}

/**
 * The decoder as it trains: token ids → logits of every row, the embedding table gathered in the graph so that it
 * trains too. Inputs: `input_ids` int64 [batch, seq] and the whole-sequence decoder's positions and mask (wholeSequenceFeeds).
 * `attention` holds each layer's attention logits (onAttentionLogits), for the answer aid.
 */
export function buildTinyLlamaForward(config: LlamaConfig, source: TensorSource): { graph: Graph; logits: Value; attention: Value[] } {
  const graph = new Graph('tiny-llama-train');
  const scope = new WeightScope(graph, source);
  const embeds = op.gather(scope.weight('model.embed_tokens.weight'), graph.input('input_ids', 'int64', ['batch', 'seq']), 0);
  const attention: Value[] = [];
  buildDecoderGraph(config, scope, { dtype: 'fp32', embeds, wholeSequence: true, onAttentionLogits: (logits) => attention.push(logits) });
  return { graph, logits: graph.outputs.find((v) => v.name === 'logits')!, attention };
}

/**
 * Writes params.json and consolidated.00.pth (a torch.save'd dict, float32) into `dir` from tensors under HF names:
 * each renamed to Meta's, wq/wk rows put back in Meta's interleaved order (the inverse of the loader's rowOrder).
 */
export async function saveMetaLlama(dir: string, shape: TinyLlamaShape, tensors: ReadonlyMap<string, Float32Array>, specs: ReadonlyMap<string, TensorSpec>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const layout = metaLayout(shape.heads, shape.heads);
  const state: Record<string, SavedValue> = {};
  for (const name of [...specs.keys()].sort()) {
    const dims = specs.get(name)!.shape;
    const meta = layout.rename(name);
    let data = tensors.get(name);
    if (!data) throw new Error(`no trained values for '${name}'`);
    const order = layout.rowOrder?.(meta, dims);
    if (order) {
      // The loader reads row i from stored row order[i]; so stored row order[i] is row i.
      const cols = dims[1]!;
      const stored = new Float32Array(data.length);
      order.forEach((from, i) => stored.set(data!.subarray(i * cols, (i + 1) * cols), from * cols));
      data = stored;
    }
    state[meta] = tensor('F32', dims, data);
  }
  await torchSave(join(dir, 'consolidated.00.pth'), state, 'consolidated.00');
  await writeFile(join(dir, 'params.json'), `${JSON.stringify(tinyLlamaParams(shape))}\n`);
}
