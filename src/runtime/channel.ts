/**
 * Items pushed by a producer, read by one consumer as an async iterable, then a result: the iteration's return
 * value, also `result`. A failure ends the iteration with the error.
 */
export class Channel<E, R> implements AsyncIterable<E> {
  /** The producer's result; rejects with its error (which iterating reports as well). */
  readonly result: Promise<R>;
  private settle!: { resolve(v: R): void; reject(e: unknown): void };
  private readonly items: E[] = [];
  private ended = false;
  private wake: () => void = () => {};

  constructor() {
    this.result = new Promise<R>((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => {}); // a consumer that only iterates sees the error there; no unhandled rejection
  }

  /** Whether the producer has ended (with a result or an error). */
  get closed(): boolean {
    return this.ended;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<E, R> {
    for (;;) {
      if (this.items.length > 0) yield this.items.shift()!;
      else if (this.ended) return await this.result;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  push(item: E): void {
    this.items.push(item);
    this.wake();
  }

  end(value: R): void {
    this.ended = true;
    this.settle.resolve(value);
    this.wake();
  }

  fail(err: unknown): void {
    this.ended = true;
    this.settle.reject(err);
    this.wake();
  }
}
