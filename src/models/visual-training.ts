/**
 * A LLaVA-family model's forward pass as it trains (LlavaLlamaForCausalLM.forward on
 * `prepare_inputs_labels_for_multimodal`'s rows, or llava-hf's merged embeddings): the prompt's text before the
 * image, the image's visual tokens, the text after it, through the vision tower, the projector and the decoder in
 * one graph, every weight reachable by the gradient — the token embeddings too, gathered in the graph.
 *
 * Inputs, besides the vision graph's pixel_values and the whole-sequence decoder's positions and mask (wholeSequenceFeeds):
 *   before_ids  int64 [batch, before]   token ids before the image (the same count in every row)
 *   after_ids   int64 [batch, after]    token ids after it (padded at the end)
 * → logits float32 [batch, before + visual tokens + after, vocab].
 */
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { WeightScope, type WeightLayout } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import type { LlamaConfig } from './llama/config.js';
import { buildDecoderGraph } from './llama/graph.js';

export interface VisualTrainingForward {
  graph: Graph;
  logits: Value;
  /** The visual tokens as the decoder takes them, [batch, visual tokens, hidden]. */
  visual: Value;
  /** Each decoder layer's attention logits [batch, heads, seq, seq] (masked scores before the softmax). */
  attention: Value[];
  /** Each decoder layer's output rows [batch, seq, hidden]. */
  hidden: Value[];
}

/**
 * `visualTokens` builds the tower on the graph's pixel_values [batch, 3, size, size]; the decoder's weights are
 * `source`'s under `layout` (HF LLaMA names after it). With `addedRows`, the graph input of that name [batch, seq,
 * hidden] is added to the decoder's input rows (probes that hand the decoder what it would otherwise work out).
 */
export function buildVisualTrainingForward(name: string, size: number, source: TensorSource, llm: LlamaConfig, layout: WeightLayout,
                                           visualTokens: (pixels: Value) => Value, addedRows?: string): VisualTrainingForward {
  const graph = new Graph(name);
  const pixels = graph.input('pixel_values', 'float32', ['batch', 3, size, size]);
  const visual = visualTokens(pixels);
  const scope = new WeightScope(graph, source, '', layout);
  const table = scope.at('model.embed_tokens').weight('weight');
  const embed = (input: string, length: string) => op.gather(table, graph.input(input, 'int64', ['batch', length]), 0);
  const rows = op.concat([embed('before_ids', 'before'), visual, embed('after_ids', 'after')], 1);
  const embeds = addedRows ? op.add(rows, graph.input(addedRows, 'float32', ['batch', 'seq', llm.hidden])) : rows;
  const attention: Value[] = [];
  const hidden: Value[] = [];
  buildDecoderGraph(llm, scope, { dtype: 'fp32', embeds, wholeSequence: true, onAttentionLogits: (logits) => attention.push(logits), onLayerOutput: (h) => hidden.push(h) });
  return { graph, logits: graph.outputs.find((v) => v.name === 'logits')!, visual, attention, hidden };
}
