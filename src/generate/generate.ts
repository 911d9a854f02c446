import type { Decoder } from '../models/decoder.js';
import type { PreparedPrompt } from '../models/prompt.js';
import { Channel } from '../runtime/channel.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { Batcher } from './batcher.js';
import { seededRandom } from './sampling.js';
import { checkContext, type FinishReason, type SequenceOptions } from './sequence.js';

export { checkContext };

/** What generation needs of a model: its decoder, token embeddings and tokenizer. */
export interface GenerationTarget {
  decoder: Decoder;
  embed(ids: readonly number[]): Float32Array;
  tokenizer: Tokenizer;
}

export interface GenerateOptions extends SequenceOptions {
  seed?: number;
  signal?: AbortSignal;
}

export interface GenerationResult {
  ids: number[];
  text: string;
  finishReason: FinishReason;
  stats: { promptTokens: number; newTokens: number; prefillMs: number; decodeMs: number };
}

/** A piece of one row's text, final (never half a character, never part of a stop string). */
export interface GenerationEvent {
  row: number;
  id: number;
  text: string;
}

/**
 * Generates for several prompts at once (rows of one batch, each with its own length) and yields every
 * row's text as it becomes final. Returns the per-row results. The rows share one random source (seeded by
 * `opts.seed`) and leave the batch as they finish; leaving the loop early cancels the rest.
 */
export async function* generate(target: GenerationTarget, prompts: readonly PreparedPrompt[], opts: GenerateOptions): AsyncGenerator<GenerationEvent, GenerationResult[]> {
  checkContext(prompts, target.decoder.config.maxPositions);
  const left = new AbortController();
  opts.signal?.addEventListener('abort', () => left.abort(), { once: true });
  if (opts.signal?.aborted) left.abort();
  const batcher = new Batcher(target);
  const random = seededRandom(opts.seed ?? 0);
  const events = new Channel<GenerationEvent, GenerationResult[]>();
  Promise.all(prompts.map((p, row) => batcher.submit(p, { ...opts, signal: left.signal, random }, (id, text) => events.push({ row, id, text }))))
    .then((results) => events.end(results), (err: unknown) => events.fail(err));
  try {
    return yield* events;
  } finally {
    left.abort();
  }
}

/** Runs `generate` to the end. */
export async function generateAll(target: GenerationTarget, prompts: readonly PreparedPrompt[], opts: GenerateOptions): Promise<GenerationResult[]> {
  const it = generate(target, prompts, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

export type { PreparedPrompt };
