import type { Decoder } from '../models/decoder.js';
import { decoderFlops, promptLayerTokens } from '../models/flops.js';
import type { PreparedPrompt } from '../models/prompt.js';

/**
 * Matrix FLOPs of a whole request: what preparing the prompt cost (each image's vision tower and projector, FastV's
 * ranking pass), the prefill, then one decode call per generated token but the last, each with the LM head. Each
 * layer attends over what it cached, so a method that drops tokens shortens both its prefill and its context.
 */
export function requestFlops(decoder: Decoder, prompt: PreparedPrompt, newTokens: number): number {
  const tokens = promptLayerTokens(decoder, prompt);
  let flops = (prompt.preparationFlops ?? 0) + decoderFlops(decoder.config, tokens, tokens, 1);
  const ones = tokens.map(() => 1);
  for (let t = 1; t < newTokens; t++) flops += decoderFlops(decoder.config, ones, tokens.map((n) => n + t), 1);
  return flops;
}
