import { Worker } from 'node:worker_threads';
import { InputError } from '../errors.js';
import { Channel } from './channel.js';

/**
 * Runs a module in a worker thread and calls its exported functions. ORT's `run` blocks the thread it runs on,
 * so inference lives in a worker and the main thread (a server, a progress bar) stays responsive.
 * Typed arrays in arguments, events and results are transferred, not copied.
 */
export class WorkerHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; event?(e: unknown): void }>();
  private nextId = 1;
  private failure: Error | undefined;

  /**
   * `keepAliveWhileIdle: false`: the worker keeps the process running only while a call is pending, so a helper
   * nobody closes (a pool serving a library function) never holds a finished process open.
   */
  constructor(moduleUrl: URL | string, private readonly opts: { keepAliveWhileIdle?: boolean } = {}) {
    this.worker = new Worker(new URL('./worker-entry.js', import.meta.url), { workerData: { moduleUrl: String(moduleUrl) } });
    if (opts.keepAliveWhileIdle === false) this.worker.unref();
    this.worker.on('message', (msg: { id: number; ok?: boolean; value?: unknown; error?: SerializedError; event?: unknown }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      if ('event' in msg) return p.event?.(msg.event);
      this.pending.delete(msg.id);
      if (this.pending.size === 0 && opts.keepAliveWhileIdle === false) this.worker.unref();
      if (msg.ok) p.resolve(msg.value);
      else p.reject(deserializeError(msg.error!));
    });
    const failAll = (err: Error) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => failAll(new Error(`inference worker exited (code ${code})`)));
  }

  /** Why the worker stopped working (it exited or threw outside a call), or undefined while it works. */
  get failed(): Error | undefined {
    return this.failure;
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    if (this.opts.keepAliveWhileIdle === false) this.worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args }, transferables(args));
    });
  }

  /**
   * Calls an async generator function of the module as `method(...args, signal)`: its yielded values arrive as
   * the stream's items, its return value as `result`. `cancel()` (or leaving the loop early) aborts `signal`;
   * the function is expected to end promptly and still return.
   */
  stream<E, R>(method: string, ...args: unknown[]): WorkerStream<E, R> {
    const id = this.nextId++;
    const stream = new WorkerStream<E, R>(() => this.worker.postMessage({ cancel: id }));
    if (this.failure) {
      stream.fail(this.failure);
      return stream;
    }
    this.pending.set(id, { resolve: (v) => stream.end(v as R), reject: (e) => stream.fail(e), event: (e) => stream.push(e as E) });
    this.worker.postMessage({ id, method, args, stream: true }, transferables(args));
    return stream;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** The items a streamed worker call yields, then its result (see WorkerHost.stream). */
export class WorkerStream<E, R> extends Channel<E, R> {
  constructor(private readonly sendCancel: () => void) {
    super();
  }

  /** Asks the worker to stop the call (its function sees its signal aborted). */
  cancel(): void {
    if (!this.closed) this.sendCancel();
  }

  override async *[Symbol.asyncIterator](): AsyncGenerator<E, R> {
    try {
      return yield* super[Symbol.asyncIterator]();
    } finally {
      this.cancel(); // the consumer left early: nobody wants the rest
    }
  }
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

/** Errors cross the thread boundary by name, so that an InputError stays an InputError (exit 2, 4xx). */
function deserializeError(e: SerializedError): Error {
  const err = e.name === 'InputError' ? new InputError(e.message) : new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

/** The ArrayBuffers under typed arrays found (shallowly, in arrays and plain objects) in `value`. */
export function transferables(value: unknown, out = new Set<ArrayBuffer>(), depth = 0): ArrayBuffer[] {
  if (depth > 4 || value === null || typeof value !== 'object') return [...out];
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && value.byteLength === value.buffer.byteLength) out.add(value.buffer);
  } else if (Array.isArray(value)) {
    for (const v of value) transferables(v, out, depth + 1);
  } else {
    for (const v of Object.values(value)) transferables(v, out, depth + 1);
  }
  return [...out];
}
