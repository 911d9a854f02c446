/** The main-thread handle of the inference worker (engine-worker.ts). */
import type { LoadModelOptions } from '../models/index.js';
import { WorkerHost, type WorkerStream } from '../runtime/worker.js';
import type { ImageLimits } from '../vision/limits.js';
import { BATCH_STATE, readBatchState, type BatchState } from './batch-state.js';
import type { EngineEvent, EngineInfo, EngineRequest, EngineResult } from './engine-worker.js';

export class Engine {
  private constructor(private readonly host: WorkerHost, readonly info: EngineInfo, private readonly state: BigInt64Array) {}

  /**
   * Starts the worker and loads the model in it; a model that fails to load stops the worker again. Up to
   * `maxBatch` generations decode together, as rows of one batch.
   */
  static async start(dir: string, opts: LoadModelOptions, limits: ImageLimits, maxBatch: number): Promise<Engine> {
    const host = new WorkerHost(new URL('./engine-worker.js', import.meta.url));
    const state = new SharedArrayBuffer(BATCH_STATE.length * 8);
    try {
      return new Engine(host, await host.call<EngineInfo>('load', dir, opts, limits, { maxBatch, state }), new BigInt64Array(state));
    } catch (err) {
      await host.close();
      throw err;
    }
  }

  /** The batch as of the worker's last prefill or decode step. */
  batch(): BatchState {
    return readBatchState(this.state);
  }

  /** Why the engine stopped working (its worker died), or undefined while it works. */
  get failed(): Error | undefined {
    return this.host.failed;
  }

  /** A generation: a `prompt` event once the prompt is ready, then its text; cancel() ends it early. */
  chat(request: EngineRequest): WorkerStream<EngineEvent, EngineResult> {
    return this.host.stream('chat', request);
  }

  async close(): Promise<void> {
    await this.host.call('unload').catch(() => {}); // the worker is terminated next in any case
    await this.host.close();
  }
}
