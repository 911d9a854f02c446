import type { ClipVisionConfig } from './clip.js';
import { convnextGrid, type ConvNextConfig } from './convnext.js';
import type { LlamaConfig } from './llama/config.js';
import type { Decoder } from './decoder.js';
import type { LlavaHrConfig } from './llava-hr.js';
import type { LlavaConfig } from './llava.js';
import type { PreparedPrompt } from './prompt.js';

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

/**
 * Matrix-product FLOPs of a CLIP ViT run: the patch convolution over `patches` cells and `layers` encoder layers
 * over `tokens` tokens (patches, plus the class token where a model keeps it): q, k, v, out and the MLP (`mlp`:
 * fc1's width, which ClipVisionConfig does not record), attention scores and weighted sums over all tokens.
 */
export function vitFlops(config: ClipVisionConfig, mlp: number, patches: number, tokens: number, layers: number): number {
  const d = config.hidden;
  const patchConv = 2 * patches * d * 3 * config.patchSize ** 2;
  return patchConv + layers * (2 * tokens * (4 * d * d + 2 * d * mlp) + 4 * tokens * tokens * d);
}

/**
 * Multiply-add FLOPs (2 each) of a ConvNeXt over a size×size image: stem, downsampling convs, and per block the
 * depthwise conv and the two MLP linears (ratio `mlpRatio`).
 */
export function convnextFlops(config: ConvNextConfig, size: number, mlpRatio = 4): number {
  const { depths, dims, patchSize, kernelSize } = config;
  let grid = Math.floor(size / patchSize);
  let flops = 2 * grid * grid * dims[0]! * 3 * patchSize ** 2;
  dims.forEach((c, s) => {
    if (s > 0) {
      grid = Math.floor(grid / 2);
      flops += 2 * grid * grid * c * dims[s - 1]! * 4;
    }
    flops += depths[s]! * 2 * grid * grid * (c * kernelSize ** 2 + 2 * c * mlpRatio * c);
  });
  return flops;
}

/** FLOPs of the 2-layer MLP projector (in → hidden → hidden) over `tokens`. */
function projectorFlops(tokens: number, width: number, hidden: number): number {
  return 2 * tokens * (width * hidden + hidden * hidden);
}

/**
 * LLaVA-HR's vision half for one image (LlavaHrVision): the ViT on the low-resolution copy, the ConvNeXt on the
 * full image, the three MR-Adapters (1×1 convs on the map, depthwise 7×7 and 1×1 on the ViT grid, the gate), the
 * fusion's two linears and the projector, for `tokens` visual tokens (visualTokenCount). Resizes and pooling are left out.
 */
export function llavaHrVisionFlops(config: LlavaHrConfig, vitMlp: number, tokens: number): number {
  const S = config.inputImageSize;
  const cells = convnextGrid(config.convnext, S) ** 2;
  const [cf, cs] = [config.vit.hidden, config.convnext.dims.at(-1)!];
  const adapter = 2 * cells * (cs * cs + cs * cf) + 2 * tokens * (cf * 7 * 7 + cf * cf) + 2 * (2 * cf * (cf / 2) + cf / 2);
  const fusion = 2 * tokens * (cf * cf + cs * cf);
  return vitFlops(config.vit, vitMlp, tokens, tokens, config.vit.layers) + convnextFlops(config.convnext, S) +
    (config.adapters ? 3 * adapter : 0) + fusion + projectorFlops(tokens, cf, config.llm.hidden);
}

/**
 * LaVIN's image path for one image: every CLIP block (class token included, no block skipped: the last class token is
 * taken after the last block) with its router adapter (down-projection C → r, two grouped up-projections r/g → C per
 * output channel, the 2-way router per token), and the projector (C → `projector` → the LLM's width) over the
 * `visualTokens` class tokens.
 */
export function lavinVisionFlops(clip: ClipVisionConfig, mlp: number, adapter: { hidden: number; groups: number }, visualTokens: number, projector: number, llmWidth: number): number {
  const patches = (clip.imageSize / clip.patchSize) ** 2;
  const tokens = patches + 1;
  const c = clip.hidden;
  const perBlock = 2 * tokens * (c * adapter.hidden + 2 * c * (adapter.hidden / adapter.groups) + 2 * c);
  return vitFlops(clip, mlp, patches, tokens, clip.layers) + clip.layers * perBlock + 2 * visualTokens * (c * projector + projector * llmWidth);
}

/** LLaVA-1.5's vision half for one image: the CLIP layers up to the selected one (class token included), the projector. */
export function llavaVisionFlops(config: LlavaConfig, vitMlp: number): number {
  const { vision } = config;
  const patches = (vision.imageSize / vision.patchSize) ** 2;
  const layers = config.featureLayer < 0 ? vision.layers + 1 + config.featureLayer : config.featureLayer;
  const selected = config.keepClassToken ? patches + 1 : patches;
  return vitFlops(vision, vitMlp, patches, patches + 1, layers) + projectorFlops(selected, vision.hidden, config.text.hidden);
}

/** Tokens each layer computes in a prompt's prefill (fewer in layers after a method drops tokens). */
export function promptLayerTokens(decoder: Decoder, prompt: PreparedPrompt): number[] {
  const n = prompt.positions.length;
  const keep = Array.from({ length: decoder.config.layers }, (_, i) => [prompt.keep?.[i]]);
  return decoder.layouts({ embeds: new Float32Array(0), seq: n, counts: [n], positions: [prompt.positions], keep, logitRows: [] }).map((l) => l.counts[0]!);
}

/** FLOPs of a prompt's prefill: every layer over the tokens it keeps, and the LM head of the last position. */
export function prefillFlops(decoder: Decoder, prompt: PreparedPrompt): number {
  const tokens = promptLayerTokens(decoder, prompt);
  return decoderFlops(decoder.config, tokens, tokens, 1);
}
