/**
 * The engine's batch as the HTTP thread reads it for /metrics, without a call into the busy inference thread:
 * slots of a BigInt64Array over shared memory, which the worker writes after every prefill and decode step.
 */
export const BATCH_STATE = ['batchSize', 'waiting', 'decodeSteps', 'decodeRows', 'prefills', 'prefillRows'] as const;

export type BatchState = Record<(typeof BATCH_STATE)[number], number>;

export function writeBatchState(shared: BigInt64Array, state: BatchState): void {
  BATCH_STATE.forEach((name, i) => Atomics.store(shared, i, BigInt(state[name])));
}

export function readBatchState(shared: BigInt64Array): BatchState {
  return Object.fromEntries(BATCH_STATE.map((name, i) => [name, Number(Atomics.load(shared, i))])) as BatchState;
}
