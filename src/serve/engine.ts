/** The main-thread handle of the inference worker (engine-worker.ts). */
import type { LoadModelOptions } from '../models/index.js';
import { WorkerHost, type WorkerStream } from '../runtime/worker.js';
import type { ImageLimits } from '../vision/limits.js';
import type { EngineEvent, EngineInfo, EngineRequest, EngineResult } from './engine-worker.js';

export class Engine {
  private constructor(private readonly host: WorkerHost, readonly info: EngineInfo) {}

  /** Starts the worker and loads the model in it; a model that fails to load stops the worker again. */
  static async start(dir: string, opts: LoadModelOptions, limits: ImageLimits): Promise<Engine> {
    const host = new WorkerHost(new URL('./engine-worker.js', import.meta.url));
    try {
      return new Engine(host, await host.call<EngineInfo>('load', dir, opts, limits));
    } catch (err) {
      await host.close();
      throw err;
    }
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
