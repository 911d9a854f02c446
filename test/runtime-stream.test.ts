// WorkerHost.stream: events from a worker thread as they happen, the result after them, cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { WorkerHost } from '../src/runtime/worker.js';

const MODULE = new URL('./helpers/stream-worker.js', import.meta.url);

test('a streamed call yields every event in order, then its return value; plain calls still work beside it', async () => {
  const host = new WorkerHost(MODULE);
  try {
    const stream = host.stream<{ i: number; data: Float32Array }, { counted: number }>('count', 5, 1);
    const seen: number[] = [];
    for await (const e of stream) {
      assert.ok(e.data instanceof Float32Array && e.data[0] === e.i);
      seen.push(e.i);
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.deepEqual(await stream.result, { counted: 5, aborted: false });
    assert.equal(await host.call('notAGenerator'), 1);
  } finally {
    await host.close();
  }
});

test('cancel aborts the function\'s signal and it returns early; leaving the loop cancels too', async () => {
  const host = new WorkerHost(MODULE);
  try {
    const stream = host.stream<{ i: number }, { counted: number; aborted: boolean }>('count', 1000, 5);
    for await (const e of stream) if (e.i === 2) stream.cancel();
    const r = await stream.result;
    assert.equal(r.aborted, true);
    assert.ok(r.counted < 10, `counted ${r.counted}`);
    const left = host.stream<{ i: number }, { counted: number; aborted: boolean }>('count', 1000, 5);
    for await (const e of left) if (e.i === 1) break;
    assert.equal((await left.result).aborted, true);
  } finally {
    await host.close();
  }
});

test('an error thrown after some events reaches both the loop and result, keeping its InputError class', async () => {
  const host = new WorkerHost(MODULE);
  try {
    const stream = host.stream<number, void>('failAfter', 2);
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const e of stream) seen.push(e);
    }, (err: unknown) => err instanceof InputError && /stopped after 2/.test(err.message));
    assert.deepEqual(seen, [0, 1]);
    await assert.rejects(stream.result, InputError);
    await assert.rejects(host.stream('notAGenerator').result, /async generator/);
  } finally {
    await host.close();
  }
});

test('a worker that dies fails its calls and streams, and says why', async () => {
  const host = new WorkerHost(MODULE);
  try {
    assert.equal(host.failed, undefined);
    const stream = host.stream<{ i: number }, unknown>('count', 1000, 50);
    await assert.rejects(host.call('exitWorker'), /exited \(code 3\)/);
    await assert.rejects(stream.result, /exited/);
    assert.match(host.failed!.message, /exited \(code 3\)/);
    await assert.rejects(host.stream('count', 1, 1).result, /exited/);
  } finally {
    await host.close();
  }
});
