/**
 * LLaVA-HR's forward pass as it trains (LlavaLlamaForCausalLM.forward on `prepare_inputs_labels_for_multimodal`'s
 * rows): the prompt's text before the image, the image's visual tokens, the text after it, through the multipath
 * tower, the projector and the decoder in one graph, every weight reachable by the gradient — the token embeddings
 * too, gathered in the graph.
 *
 * Inputs, besides the decoder's whole-sequence ones (wholeSequenceFeeds):
 *   pixel_values float32 [batch, 3, S, S]   the preprocessed images
 *   before_ids   int64 [batch, before]       token ids before the image (the same count in every row)
 *   after_ids    int64 [batch, after]        token ids after it (padded at the end)
 * → logits float32 [batch, before + visual tokens + after, vocab].
 */
import { Graph, type Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import { WeightScope } from '../../graph/weights.js';
import type { TensorSource } from '../../io/checkpoint.js';
import { buildDecoderGraph } from '../llama/graph.js';
import { buildMultipathVision, type LlavaHrConfig } from '../llava-hr.js';

export interface LlavaHrTrainingForward {
  graph: Graph;
  logits: Value;
}

export function buildLlavaHrTrainingForward(config: LlavaHrConfig, source: TensorSource): LlavaHrTrainingForward {
  const graph = new Graph('llava-hr-train');
  const S = config.inputImageSize;
  const pixels = graph.input('pixel_values', 'float32', ['batch', 3, S, S]);
  const scope = new WeightScope(graph, source);
  const { visualTokens } = buildMultipathVision(scope, config, pixels);
  const table = scope.at('model.embed_tokens').weight('weight');
  const embed = (name: string, length: string) => op.gather(table, graph.input(name, 'int64', ['batch', length]), 0);
  const embeds = op.concat([embed('before_ids', 'before'), visualTokens, embed('after_ids', 'after')], 1);
  buildDecoderGraph(config.llm, scope, { dtype: 'fp32', embeds });
  return { graph, logits: graph.outputs.find((v) => v.name === 'logits')! };
}
