import type { Decoder, DecoderCall } from './decoder.js';

/** A prompt ready for the decoder: its embeddings (visual tokens already in place) and token layout. */
export interface PreparedPrompt {
  /** [tokens, hidden]. */
  embeds: Float32Array;
  /** RoPE position of each token. */
  positions: readonly number[];
  /** Text token ids (for the repetition penalty); visual tokens are not listed. */
  textIds: readonly number[];
  /** Indices of the visual tokens in the prompt, in order (VTW and FastV act on them; stats count them). */
  visual: readonly number[];
  /**
   * keep[layer]: indices into the previous layer's tokens that stay from that layer on (VTW withdraws visual
   * tokens before layer K); absent layers keep everything.
   */
  keep?: readonly (readonly number[] | undefined)[];
  /** The sequence's constant decoder input, for a model that takes one (LaVIN: its modality's routes). */
  conditioning?: Float32Array;
  /** RoPE position of the first generated token; default the prompt's last position + 1. */
  nextPosition?: number;
  /**
   * Logits of rows that come before the prompt in the model's own sequence but that no token attends to, so that
   * they are computed once, not with each prompt (LaVIN's modality token, row 0). `egret logits` lists them first.
   */
  leadingLogits?: Float32Array;
  /**
   * Matrix FLOPs spent to prepare this prompt besides its prefill: the vision tower and projector of each image,
   * FastV's ranking pass. Counted in a request's stats.flops.
   */
  preparationFlops?: number;
}

/** The decoder call that prefills `prompts` as rows of one batch, asking for each row's last logits. */
export function prefillCall(decoder: Decoder, prompts: readonly PreparedPrompt[]): DecoderCall {
  const { hidden, layers } = decoder.config;
  const seq = Math.max(...prompts.map((p) => p.positions.length));
  const embeds = new Float32Array(prompts.length * seq * hidden);
  prompts.forEach((p, b) => embeds.set(p.embeds, b * seq * hidden));
  const keep = Array.from({ length: layers }, (_, i) => prompts.map((p) => p.keep?.[i]));
  const conditioning = prompts.every((p) => p.conditioning) ? prompts.map((p) => p.conditioning!) : undefined;
  const call = { embeds, seq, counts: prompts.map((p) => p.positions.length), positions: prompts.map((p) => p.positions), keep, ...(conditioning ? { conditioning } : {}) };
  // The logits come from each row's last token that reaches the last layer.
  const last = decoder.layouts({ ...call, logitRows: [] }).at(-1)!;
  return { ...call, logitRows: last.counts.map((n) => [n - 1]) };
}
