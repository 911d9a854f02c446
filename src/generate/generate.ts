import { InputError } from '../errors.js';
import type { Decoder } from '../models/decoder.js';
import { prefillCall, type PreparedPrompt } from '../models/prompt.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { sampleToken, seededRandom, type SamplingOptions } from './sampling.js';
import { StopMatcher } from './stop.js';

/** What generation needs of a model: its decoder, token embeddings and tokenizer. */
export interface GenerationTarget {
  decoder: Decoder;
  embed(ids: readonly number[]): Float32Array;
  tokenizer: Tokenizer;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  /** Strings that end generation; the text stops before them. */
  stop?: readonly string[];
  ignoreEos?: boolean;
  signal?: AbortSignal;
}

export interface GenerationResult {
  ids: number[];
  text: string;
  finishReason: 'stop' | 'length' | 'cancelled';
  stats: { promptTokens: number; newTokens: number; prefillMs: number; decodeMs: number };
}

/** A piece of one row's text, final (never half a character, never part of a stop string). */
export interface GenerationEvent {
  row: number;
  id: number;
  text: string;
}

/** The largest RoPE position of a prompt (a loop: prompts may hold more tokens than a spread can pass). */
function lastPosition(p: PreparedPrompt): number {
  let last = -1;
  for (const x of p.positions) if (x > last) last = x;
  return last;
}

/** Refuses prompts that do not fit the context window, before any compute. */
export function checkContext(prompts: readonly PreparedPrompt[], maxPositions: number): void {
  for (const [i, p] of prompts.entries()) {
    if (p.positions.length === 0) throw new InputError(`prompt${prompts.length > 1 ? ` ${i}` : ''} is empty`);
    const last = lastPosition(p);
    if (last + 1 > maxPositions) {
      throw new InputError(`prompt${prompts.length > 1 ? ` ${i}` : ''} has ${last + 1} tokens (visual tokens included), more than the context of ${maxPositions}`);
    }
  }
}

/**
 * Generates for several prompts at once (rows of one batch, each with its own length) and yields every
 * row's text as it becomes final. Returns the per-row results.
 */
export async function* generate(target: GenerationTarget, prompts: readonly PreparedPrompt[], opts: GenerateOptions): AsyncGenerator<GenerationEvent, GenerationResult[]> {
  const { decoder, tokenizer } = target;
  const { maxPositions } = decoder.config;
  checkContext(prompts, maxPositions);
  const batch = prompts.length;
  const random = seededRandom(opts.seed ?? 0);
  const rows = prompts.map((p) => ({
    ids: [] as number[],
    seen: [...p.textIds],
    next: p.nextPosition ?? lastPosition(p) + 1,
    decoder: tokenizer.streamDecoder(),
    stop: new StopMatcher(opts.stop ?? []),
    text: '',
    done: opts.maxNewTokens <= 0 ? ('length' as const) : undefined as GenerationResult['finishReason'] | undefined,
  }));
  const cache = decoder.newCache(batch);
  let started = performance.now();
  let { logits } = await decoder.forward(cache, prefillCall(decoder, prompts));
  const prefillMs = performance.now() - started;
  started = performance.now();
  const vocab = decoder.config.vocab;
  while (true) {
    const chosen: number[] = [];
    for (let b = 0; b < batch; b++) {
      const row = rows[b]!;
      if (row.done) { chosen.push(0); continue; }
      if (opts.signal?.aborted) { row.done = 'cancelled'; chosen.push(0); continue; }
      const id = sampleToken(logits.subarray(b * vocab, (b + 1) * vocab), opts, row.seen, random);
      chosen.push(id);
      row.ids.push(id);
      row.seen.push(id);
      const isEos = id === tokenizer.eosId && !opts.ignoreEos;
      const piece = isEos ? row.decoder.flush() : row.decoder.push(id);
      const { emit, stopped } = row.stop.push(piece, isEos || row.ids.length >= opts.maxNewTokens);
      row.text += emit;
      if (emit) yield { row: b, id, text: emit };
      if (stopped || isEos) row.done = 'stop';
      else if (row.ids.length >= opts.maxNewTokens || row.next + 1 > maxPositions) row.done = 'length';
      if (row.done && !stopped && !isEos) {
        const tail = row.stop.push(row.decoder.flush(), true).emit;
        row.text += tail;
        if (tail) yield { row: b, id, text: tail };
      }
    }
    if (rows.every((r) => r.done)) break;
    const counts = rows.map((r) => (r.done ? 0 : 1));
    ({ logits } = await decoder.forward(cache, {
      embeds: target.embed(chosen), seq: 1, counts, positions: rows.map((r) => (r.done ? [] : [r.next++])), logitRows: rows.map(() => [0]),
    }));
  }
  const decodeMs = performance.now() - started;
  return rows.map((r, b) => ({
    ids: r.ids,
    text: r.text,
    finishReason: r.done!,
    stats: { promptTokens: prompts[b]!.positions.length, newTokens: r.ids.length, prefillMs, decodeMs },
  }));
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
