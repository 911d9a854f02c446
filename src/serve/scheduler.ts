/**
 * Admission control for generations: at most `concurrency` run at once (in the engine's worker they decode as
 * rows of one batch, see Batcher), at most `maxQueue` wait for a turn, and the rest are refused at once so that
 * the client can retry later (429). A waiting request whose client goes away leaves the queue.
 */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export class Scheduler {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly concurrency: number, readonly maxQueue: number) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits for a turn and returns the function that ends it. Throws QueueFullError at once when the queue is
   * full; rejects with the signal's reason if it aborts while waiting.
   */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve(this.release());
    }
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(new QueueFullError(`the server is busy: ${this.running} requests running and ${this.waiting.length} waiting`));
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', leave);
        this.running++;
        resolve(this.release());
      };
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', leave, { once: true });
      this.waiting.push(grant);
    });
  }

  /** Ends one turn (once, however often it is called) and hands it to the longest-waiting request. */
  private release(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.waiting.shift()?.();
    };
  }
}

/**
 * Bytes of request bodies held at once (read, decoded, waiting for their turn), so that many large uploads
 * together cannot exhaust memory: a request that does not fit is refused (503) instead.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Takes `bytes` if they fit in what is left; says whether they did. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}
