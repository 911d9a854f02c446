import { parentPort, workerData } from 'node:worker_threads';
import { transferables, type SerializedError } from './worker.js';

// The worker side of WorkerHost: imports the module named by the host and answers calls to its exports.
const module = (await import(workerData.moduleUrl as string)) as Record<string, (...args: unknown[]) => unknown>;

parentPort!.on('message', async (msg: { id: number; method: string; args: unknown[] }) => {
  const fn = module[msg.method];
  try {
    if (typeof fn !== 'function') throw new Error(`worker module has no function '${msg.method}'`);
    const value = await fn(...msg.args);
    parentPort!.postMessage({ id: msg.id, ok: true, value }, transferables(value));
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const error: SerializedError = { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
    parentPort!.postMessage({ id: msg.id, ok: false, error });
  }
});
