/**
 * LaVIN's forward pass as it trains (lavin/model.py Transformer.forward with its training inputs): the whole
 * sequence — modality token at row 0, BOS, the "Image: " prefix, the visual tokens, the example — through CLIP, the
 * projector and the LLaMA in one graph, so that gradients reach every adapter: each block routes on row 0's
 * normalised hidden state, computed in the graph, and no row but 0 attends to row 0.
 *
 * The graph's own inputs, besides the whole-sequence decoder's positions and mask (wholeSequenceFeeds):
 *   pixel_values  float32 [batch, 3, S, S]   one image per row (zeros for text-only rows; their tokens go unused)
 *   text_embeds   float32 [batch, seq, D]    the frozen token embeddings of the text rows, zero elsewhere
 *   visual_rows   float32 [batch, seq, n]    one-hot: row r of a sample takes its visual token j
 *   modality_rows float32 [batch, seq, 2]    one-hot: row 0 takes the modality embedding of the sample's modality
 * → logits float32 [batch, seq, vocab].
 */
import { Graph, type Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import { WeightScope } from '../../graph/weights.js';
import type { TensorSource } from '../../io/checkpoint.js';
import { MASKED } from '../../runtime/kv-cache.js';
import type { ClipVisionConfig } from '../clip.js';
import { buildDecoderGraph } from '../llama/graph.js';
import type { LanguageModelWeights } from '../llama/load.js';
import { mixtureAdapter, routeWeights, type AdapterDropout } from './adapter.js';
import { LAVIN_MODULES, type LavinSettings } from './settings.js';
import { buildLavinVision } from './vision.js';

export interface LavinTrainingForward {
  graph: Graph;
  logits: Value;
}

/** The forward graph; with `dropout` > 0 the adapters drop hidden units from the graph's `dropout_seed` stream. */
export function buildLavinTrainingForward(weights: LanguageModelWeights, clip: TensorSource, adapters: TensorSource, clipConfig: ClipVisionConfig, settings: LavinSettings,
                                          dropout = 0): LavinTrainingForward {
  const graph = new Graph('lavin-train');
  const drop: AdapterDropout | undefined = dropout > 0 ? { p: dropout, noise: op.DropoutNoise.input(graph) } : undefined;
  const { hidden } = weights.config;
  const size = clipConfig.imageSize;
  const pixels = graph.input('pixel_values', 'float32', ['batch', 3, size, size]);
  const visual = buildLavinVision(graph, clip, adapters, clipConfig, settings, pixels, drop).tokens;
  const text = graph.input('text_embeds', 'float32', ['batch', 'seq.0', hidden]);
  const visualRows = graph.input('visual_rows', 'float32', ['batch', 'seq.0', settings.visualTokens]);
  const modalityRows = graph.input('modality_rows', 'float32', ['batch', 'seq.0', 2]);
  const modalityTable = new WeightScope(graph, adapters, `${settings.prefix}adapter_modality_embedding`).weight('weight');
  const embeds = op.add(op.add(text, op.matmul(visualRows, visual)), op.matmul(modalityRows, modalityTable));
  const scope = new WeightScope(graph, weights.source, '', weights.layout);
  buildDecoderGraph(weights.config, scope, {
    dtype: 'fp32',
    embeds,
    wholeSequence: true,
    attentionInput: (x, layer) => {
      const adapter = new WeightScope(graph, adapters, settings.prefix + LAVIN_MODULES.llm(layer));
      // lavin/mm_adapter.py: the route of every sample from its first row (the modality token), per layer.
      return mixtureAdapter(adapter, x, routeWeights(adapter, op.slice(x, [1], [0], [1]), settings.llm), settings.llm, drop);
    },
  });
  return { graph, logits: graph.outputs.find((v) => v.name === 'logits')! };
}

/** lavin/model.py's training mask: causal, and no row but 0 attends to row 0 (the modality token). [batch, 1, seq, seq]. */
export function lavinTrainingMask(batch: number, seq: number): Float32Array {
  const mask = new Float32Array(batch * seq * seq).fill(MASKED);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < seq; r++) {
      const row = (b * seq + r) * seq;
      mask.fill(0, row + (r === 0 ? 0 : 1), row + r + 1);
    }
  }
  return mask;
}
