// A worker module for the WorkerHost.stream tests: counts, slowly, until told to stop.
import { InputError } from '../../src/errors.js';

/** Yields 0..n-1, one every `delayMs`, each with a transferred buffer; returns how far it got and why it ended. */
export async function* count(n: number, delayMs: number, signal: AbortSignal): AsyncGenerator<{ i: number; data: Float32Array }, { counted: number; aborted: boolean }> {
  let i = 0;
  for (; i < n && !signal.aborted; i++) {
    yield { i, data: new Float32Array(4).fill(i) };
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  return { counted: i, aborted: signal.aborted };
}

export async function* failAfter(n: number): AsyncGenerator<number, void> {
  for (let i = 0; i < n; i++) yield i;
  throw new InputError(`stopped after ${n}`);
}

export function notAGenerator(): number {
  return 1;
}

/** Ends the worker thread itself, as a crash would. */
export function exitWorker(): void {
  process.exit(3);
}
