import type { Decoder } from '../models/decoder.js';
import { decoderFlops } from '../models/flops.js';
import type { PreparedPrompt } from '../models/prompt.js';

/** Tokens each layer computes in a prompt's prefill (fewer in layers after a method drops tokens). */
export function promptLayerTokens(decoder: Decoder, prompt: PreparedPrompt): number[] {
  const n = prompt.positions.length;
  const keep = Array.from({ length: decoder.config.layers }, (_, i) => [prompt.keep?.[i]]);
  return decoder.layouts({ embeds: new Float32Array(0), seq: n, counts: [n], positions: [prompt.positions], keep, logitRows: [] }).map((l) => l.counts[0]!);
}

/**
 * Matrix FLOPs of a whole request: the prefill, then one decode call per generated token but the last. Each
 * layer attends over what it cached, so a method that drops tokens shortens both its prefill and its context.
 */
export function requestFlops(decoder: Decoder, prompt: PreparedPrompt, newTokens: number): number {
  const tokens = promptLayerTokens(decoder, prompt);
  let flops = decoderFlops(decoder.config, tokens, tokens, 1);
  const ones = tokens.map(() => 1);
  for (let t = 1; t < newTokens; t++) flops += decoderFlops(decoder.config, ones, tokens.map((n) => n + t), 1);
  return flops;
}
