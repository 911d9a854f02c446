import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { Graph } from '../graph/ir.js';
import { toOnnxBytes, writeOnnxModel } from '../graph/onnx.js';

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Intra-op compute threads; default all cores (CONTRACT.md --threads). */
  threads?: number;
  optimization?: OptimizationLevel;
  /**
   * Keep ORT's optimised model on disk under `cacheDir`, keyed by `cacheKey` (the caller names the checkpoint
   * and every option that changes the graph). A later session with the same key skips building and optimising.
   */
  cache?: { dir: string; key: string };
  /**
   * ORT's CPU memory arena (default on). Off, tensors go back to the system as they die: a training step's peak
   * is ~1/3 lower (measured on a LLaMA-shaped adapter step), at some speed.
   */
  memArena?: boolean;
}

/** Graphs whose weights exceed this are written to disk with external data (protobuf stops at 2 GB). */
const EMBEDDED_WEIGHTS_LIMIT = 1 << 30;

export class Session {
  private constructor(
    readonly ort: ort.InferenceSession,
    /** Where the model came from: 'memory', 'file' or 'cache' (a cache hit). */
    readonly origin: 'memory' | 'file' | 'cache',
  ) {}

  get inputNames(): readonly string[] {
    return this.ort.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.ort.outputNames;
  }

  /**
   * Builds a session from a graph. The graph's weights are read (its lazy weight functions called) only when
   * the cache has no model for the key.
   */
  static async fromGraph(graph: Graph | (() => Graph), opts: SessionOptions = {}): Promise<Session> {
    const build = typeof graph === 'function' ? graph : () => graph;
    const base = baseOptions(opts);
    if (opts.cache) {
      const dir = join(opts.cache.dir, cacheDirName(opts));
      const optimized = join(dir, 'optimized.onnx');
      if (await exists(optimized)) {
        return new Session(await ort.InferenceSession.create(optimized, { ...base, graphOptimizationLevel: 'disabled' }), 'cache');
      }
      // Build and optimise in a private folder, then rename it into place: a crash never leaves a partial
      // model under the key, and concurrent builders of the same key do not see each other's files.
      const work = `${dir}.tmp-${process.pid}-${Date.now()}`;
      const raw = join(work, 'model.onnx');
      let session: ort.InferenceSession;
      try {
        await writeOnnxModel(build(), raw);
        session = await ort.InferenceSession.create(raw, {
          ...base,
          optimizedModelFilePath: join(work, 'optimized.onnx'),
          extra: { session: { optimized_model_external_initializers_file_name: 'optimized.onnx.data', optimized_model_external_initializers_min_size_in_bytes: '1024' } },
        });
      } catch (err) {
        await rm(work, { recursive: true, force: true });
        throw err;
      }
      await rm(raw, { force: true });
      await rm(`${raw}.data`, { force: true });
      await rename(work, dir).catch(async () => rm(work, { recursive: true, force: true }));
      return new Session(session, 'file');
    }
    const g = build();
    if (g.weightBytes() <= EMBEDDED_WEIGHTS_LIMIT) {
      return Session.fromModel(await toOnnxBytes(g), opts);
    }
    // Too large to embed: write model + external data to a private temp dir; ORT maps the weights from the file.
    const dir = await mkdtemp(join(tmpdir(), 'egret-model-'));
    try {
      await writeOnnxModel(g, join(dir, 'model.onnx'));
      return new Session(await ort.InferenceSession.create(join(dir, 'model.onnx'), base), 'file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** A session from serialised ONNX bytes (weights embedded). */
  static async fromModel(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
    return new Session(await ort.InferenceSession.create(model, baseOptions(opts)), 'memory');
  }

  /**
   * Runs the graph. Inputs are wrapped without copies (ort.Tensor over the caller's typed arrays). `into` gives
   * preallocated output tensors that ORT writes into directly.
   */
  async run(feeds: Record<string, ort.Tensor>, into?: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    return into ? this.ort.run(feeds, into) : this.ort.run(feeds);
  }

  async dispose(): Promise<void> {
    await this.ort.release();
  }
}

function baseOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: opts.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: opts.optimization ?? 'all',
    executionMode: 'sequential',
    enableCpuMemArena: opts.memArena ?? true,
  };
}

function cacheDirName(opts: SessionOptions): string {
  // The optimised model depends on the optimisation level and on the CPU ORT optimised it for (it may use
  // kernels and layouts only that CPU has), as well as on the graph.
  const cpu = [process.arch, cpus()[0]?.model ?? 'unknown', availableParallelism()];
  return createHash('sha256').update(JSON.stringify([opts.cache!.key, opts.optimization ?? 'all', ort.env.versions.node, cpu])).digest('hex').slice(0, 32);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

export { ort };
