/** LLaVA-HR's training forward (see visual-training.ts): the multipath tower, projector and decoder in one graph. */
import { identityLayout, WeightScope } from '../../graph/weights.js';
import type { TensorSource } from '../../io/checkpoint.js';
import { buildMultipathVision, type LlavaHrConfig } from '../llava-hr.js';
import { buildVisualTrainingForward, type VisualTrainingForward } from '../visual-training.js';

export function buildLlavaHrTrainingForward(config: LlavaHrConfig, source: TensorSource, addedRows?: string): VisualTrainingForward {
  return buildVisualTrainingForward('llava-hr-train', config.inputImageSize, source, config.llm, identityLayout,
    (pixels) => buildMultipathVision(new WeightScope(pixels.graph, source), config, pixels).visualTokens, addedRows);
}
