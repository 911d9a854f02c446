import { InputError } from '../errors.js';
import type { PreparedPrompt } from '../models/prompt.js';
import type { StreamDecoder } from '../text/decoder.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { sampleToken, type SamplingOptions } from './sampling.js';
import { StopMatcher } from './stop.js';

export type FinishReason = 'stop' | 'length' | 'cancelled';

/** What ends a sequence and how its tokens are picked. */
export interface SequenceOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Strings that end generation; the text stops before them. */
  stop?: readonly string[];
  ignoreEos?: boolean;
}

/** The largest RoPE position of a prompt (a loop: prompts may hold more tokens than a spread can pass). */
export function lastPosition(p: PreparedPrompt): number {
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
 * One sequence being generated after its prompt: picks each token from its row of logits, turns tokens into
 * final text (never half a character, never part of a stop string), and knows when and why it ends. Rows of a
 * batch each have one, with their own options and random source.
 */
export class Sequence {
  readonly ids: number[] = [];
  /** RoPE position of the token fed back next. */
  next: number;
  text = '';
  done: FinishReason | undefined;
  private readonly seen: number[];
  private readonly decoder: StreamDecoder;
  private readonly stop: StopMatcher;

  constructor(
    prompt: PreparedPrompt,
    private readonly tokenizer: Tokenizer,
    private readonly opts: SequenceOptions,
    private readonly random: () => number,
    private readonly maxPositions: number,
  ) {
    this.seen = [...prompt.textIds];
    this.next = prompt.nextPosition ?? lastPosition(prompt) + 1;
    this.decoder = tokenizer.streamDecoder();
    this.stop = new StopMatcher(opts.stop ?? []);
    if (opts.maxNewTokens <= 0) this.done = 'length';
  }

  /** Ends the sequence before its next token (its client left); no more text comes. */
  cancel(): void {
    this.done ??= 'cancelled';
  }

  /**
   * Picks the next token from this row's logits [vocab]; returns it with the pieces of text that became final
   * (none, one, or two when the end releases held-back text). Call only while not done.
   */
  accept(logits: Float32Array): { id: number; pieces: string[] } {
    const { opts, tokenizer } = this;
    const id = sampleToken(logits, opts, this.seen, this.random);
    this.ids.push(id);
    this.seen.push(id);
    const isEos = id === tokenizer.eosId && !opts.ignoreEos;
    const piece = isEos ? this.decoder.flush() : this.decoder.push(id);
    const { emit, stopped } = this.stop.push(piece, isEos || this.ids.length >= opts.maxNewTokens);
    const pieces = emit ? [emit] : [];
    if (stopped || isEos) this.done = 'stop';
    else if (this.ids.length >= opts.maxNewTokens || this.next + 1 > this.maxPositions) this.done = 'length';
    if (this.done && !stopped && !isEos) {
      const tail = this.stop.push(this.decoder.flush(), true).emit;
      if (tail) pieces.push(tail);
    }
    this.text += pieces.join('');
    return { id, pieces };
  }
}
