import { parentPort, workerData } from 'node:worker_threads';
import { transferables, type SerializedError } from './worker.js';

// The worker side of WorkerHost: imports the module named by the host and answers calls to its exports.
const module = (await import(workerData.moduleUrl as string)) as Record<string, (...args: unknown[]) => unknown>;

/** Streamed calls still running, by call id, so that a cancel message can abort them. */
const running = new Map<number, AbortController>();

type Message = { id: number; method: string; args: unknown[]; stream?: boolean } | { cancel: number };

parentPort!.on('message', async (msg: Message) => {
  if ('cancel' in msg) {
    running.get(msg.cancel)?.abort();
    return;
  }
  const fn = module[msg.method];
  try {
    if (typeof fn !== 'function') throw new Error(`worker module has no function '${msg.method}'`);
    const value = msg.stream ? await streamCall(msg.id, fn, msg.args) : await fn(...msg.args);
    parentPort!.postMessage({ id: msg.id, ok: true, value }, transferables(value));
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const error: SerializedError = { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
    parentPort!.postMessage({ id: msg.id, ok: false, error });
  }
});

/** Runs an async generator function, posting each yielded value as an event; resolves to its return value. */
async function streamCall(id: number, fn: (...args: unknown[]) => unknown, args: unknown[]): Promise<unknown> {
  const controller = new AbortController();
  running.set(id, controller);
  try {
    const it = fn(...args, controller.signal) as AsyncIterator<unknown> | undefined;
    if (typeof it?.next !== 'function') throw new Error('a streamed worker function must be an async generator function');
    for (;;) {
      const step = await it.next();
      if (step.done) return step.value;
      parentPort!.postMessage({ id, event: step.value }, transferables(step.value));
    }
  } finally {
    running.delete(id);
  }
}
