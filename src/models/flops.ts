import type { LlamaConfig } from './llama/config.js';

/**
 * Matrix-product FLOPs (2 per multiply-add) of a decoder call: linear layers, attention scores and weighted
 * sums, and the LM head. `layerTokens[i]` / `layerContext[i]` are the tokens layer i computes in this call and
 * the context they attend to (cached + new; VTW shortens both for withdrawn layers). Norms, RoPE and softmax are
 * left out: they are a fraction of a percent at these sizes.
 */
export function decoderFlops(config: LlamaConfig, layerTokens: readonly number[], layerContext: readonly number[], logitRows: number): number {
  const { hidden: d, heads, kvHeads, headDim, intermediate, vocab } = config;
  const linearParams = 2 * d * heads * headDim + 2 * d * kvHeads * headDim + 3 * d * intermediate;
  let flops = 0;
  for (let i = 0; i < config.layers; i++) {
    const n = layerTokens[i]!;
    flops += 2 * n * linearParams;
    // Query s of this call sees (context - n + s + 1) keys: scores and weighted sum, 2 FLOPs each per head dim.
    const past = layerContext[i]! - n;
    flops += 4 * heads * headDim * (n * past + (n * (n + 1)) / 2);
  }
  return flops + 2 * logitRows * d * vocab;
}
