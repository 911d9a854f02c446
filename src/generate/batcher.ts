import type { PreparedPrompt } from '../models/prompt.js';
import { prefillCall } from '../models/prompt.js';
import { KVCache } from '../runtime/kv-cache.js';
import type { GenerateOptions, GenerationResult, GenerationTarget } from './generate.js';
import { seededRandom } from './sampling.js';
import { checkContext, Sequence } from './sequence.js';

/** What a submission may add to GenerateOptions: a random source shared with other rows (generate() shares one). */
export interface SubmitOptions extends GenerateOptions {
  random?: () => number;
}

/** Padded prompt tokens one prefill call may hold (rows × longest row), unless a single prompt is longer. */
const PREFILL_TOKENS = 2048;

interface Entry {
  prompt: PreparedPrompt;
  seq: Sequence;
  signal: AbortSignal | undefined;
  onText: ((id: number, text: string) => void) | undefined;
  resolve(result: GenerationResult): void;
  reject(err: unknown): void;
  prefillMs: number;
  /** When its decoding began (its prefill ended). */
  decodeFrom: number;
}

/** Work counters, for metrics: decode calls and the rows they carried, prefill calls and their prompts. */
export interface BatcherCounters {
  decodeSteps: number;
  decodeRows: number;
  prefills: number;
  prefillRows: number;
}

/**
 * Continuous batching: sequences share the decoder's calls. A submitted prompt waits until the running decode step
 * ends, is prefilled (with the others that arrived meanwhile, as rows of one call), and its rows join the running
 * batch; each step then decodes one token of every running sequence in one call, and a finished or cancelled
 * sequence leaves the batch at once. Every sequence keeps its own sampling options, random source, stop strings,
 * token layout (VTW's per-layer withdrawal) and cancellation.
 *
 * The batch's KV cache holds exactly the running rows: it is gathered anew (KVCache.gather) when rows join or
 * leave, so no step computes or attends over a finished row.
 */
export class Batcher {
  private waiting: Entry[] = [];
  private rows: Entry[] = [];
  private cache: KVCache | undefined;
  private running = false;
  readonly counters: BatcherCounters = { decodeSteps: 0, decodeRows: 0, prefills: 0, prefillRows: 0 };

  constructor(
    private readonly target: GenerationTarget,
    /** Most sequences decoding together; more wait for a place. */
    readonly maxBatch = Infinity,
    /** Called after every prefill and decode step, and when the batch empties (for metrics). */
    private readonly onChange?: () => void,
  ) {}

  /** Sequences in the running batch. */
  get batchSize(): number {
    return this.rows.length;
  }

  /** Sequences submitted and not yet prefilled. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Generates for one prompt alongside whatever else runs. `onText` gets each piece of text as it becomes final;
   * the promise resolves with the result when the sequence ends (stop, length, or `opts.signal` aborted:
   * 'cancelled'). A prompt that does not fit the context is refused at once (InputError).
   */
  submit(prompt: PreparedPrompt, opts: SubmitOptions, onText?: (id: number, text: string) => void): Promise<GenerationResult> {
    const { decoder, tokenizer } = this.target;
    try {
      checkContext([prompt], decoder.config.maxPositions);
    } catch (err) {
      return Promise.reject(err);
    }
    const random = opts.random ?? seededRandom(opts.seed ?? 0);
    return new Promise((resolve, reject) => {
      const seq = new Sequence(prompt, tokenizer, opts, random, decoder.config.maxPositions);
      this.waiting.push({ prompt, seq, signal: opts.signal, onText, resolve, reject, prefillMs: 0, decodeFrom: 0 });
      if (!this.running) {
        this.running = true;
        // After the current turn: prompts submitted together are prefilled together.
        setImmediate(() => void this.loop());
      }
    });
  }

  private async loop(): Promise<void> {
    try {
      while (this.waiting.length > 0 || this.rows.length > 0) {
        const joining = await this.prefill();
        this.regroup(joining);
        this.onChange?.();
        if (this.rows.length > 0) await this.step();
      }
    } catch (err) {
      // The decoder failed (not one request's input): every sequence in flight ends with the error.
      for (const e of [...this.rows, ...this.waiting]) e.reject(err);
      this.rows = [];
      this.waiting = [];
      this.cache = undefined;
    } finally {
      this.running = false;
      this.onChange?.();
    }
  }

  /**
   * Prefills waiting prompts that fit (places in the batch, PREFILL_TOKENS) as rows of one call into a cache of
   * their own, and picks each one's first token. Returns them with that cache.
   */
  private async prefill(): Promise<{ entries: Entry[]; cache: KVCache } | undefined> {
    this.waiting = this.waiting.filter((e) => (cancelled(e) ? (finish(e), false) : true));
    const room = this.maxBatch - this.rows.length;
    const entries: Entry[] = [];
    let longest = 0;
    for (const e of this.waiting) {
      if (entries.length >= room) break;
      const n = Math.max(longest, e.prompt.positions.length);
      if (entries.length > 0 && (entries.length + 1) * n > PREFILL_TOKENS) break;
      entries.push(e);
      longest = n;
    }
    if (entries.length === 0) return undefined;
    this.waiting = this.waiting.slice(entries.length);
    const { decoder } = this.target;
    const cache = decoder.newCache(entries.length);
    const started = performance.now();
    const { logits } = await decoder.forward(cache, prefillCall(decoder, entries.map((e) => e.prompt)));
    const ended = performance.now();
    this.counters.prefills++;
    this.counters.prefillRows += entries.length;
    entries.forEach((e, b) => {
      e.prefillMs = ended - started;
      e.decodeFrom = ended;
      this.pick(e, logits, b);
    });
    return { entries, cache };
  }

  /** The rows that go on (finished ones leave: resolved) and the joining ones after them, in one gathered cache. */
  private regroup(joining: { entries: Entry[]; cache: KVCache } | undefined): void {
    const stay = this.rows.map((e, row) => ({ e, from: this.cache!, row })).filter(({ e }) => !e.seq.done);
    const join = (joining?.entries ?? []).map((e, row) => ({ e, from: joining!.cache, row })).filter(({ e }) => !e.seq.done);
    for (const e of [...this.rows, ...(joining?.entries ?? [])]) if (e.seq.done) finish(e);
    if (join.length === 0 && stay.length === this.rows.length) return;
    const next = [...stay, ...join];
    this.rows = next.map(({ e }) => e);
    this.cache = next.length > 0 ? KVCache.gather(next[0]!.from, next) : undefined;
  }

  /** One decode call over every running row, then each row's next token. */
  private async step(): Promise<void> {
    const { decoder } = this.target;
    const rows = this.rows;
    const ids = rows.map((e) => e.seq.ids.at(-1)!);
    const { logits } = await decoder.forward(this.cache!, {
      embeds: this.target.embed(ids), seq: 1, counts: rows.map(() => 1), positions: rows.map((e) => [e.seq.next++]), logitRows: rows.map(() => [0]),
    });
    this.counters.decodeSteps++;
    this.counters.decodeRows += rows.length;
    rows.forEach((e, b) => this.pick(e, logits, b));
  }

  /** Row `b`'s next token, unless its request was cancelled meanwhile. */
  private pick(e: Entry, logits: Float32Array, b: number): void {
    if (e.seq.done) return;
    if (cancelled(e)) return e.seq.cancel();
    const vocab = this.target.decoder.config.vocab;
    const { id, pieces } = e.seq.accept(logits.subarray(b * vocab, (b + 1) * vocab));
    for (const text of pieces) e.onText?.(id, text);
  }
}

const cancelled = (e: Entry) => e.signal?.aborted === true;

function finish(e: Entry): void {
  if (cancelled(e)) e.seq.cancel();
  const { seq, prompt } = e;
  e.resolve({
    ids: seq.ids,
    text: seq.text,
    finishReason: seq.done!,
    stats: { promptTokens: prompt.positions.length, newTokens: seq.ids.length, prefillMs: e.prefillMs, decodeMs: e.decodeFrom > 0 ? performance.now() - e.decodeFrom : 0 },
  });
}
