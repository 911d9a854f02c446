import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { Graph } from '../graph/ir.js';
import { graphStructure, toOnnxBytes, writeOnnxModel } from '../graph/onnx.js';

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Intra-op compute threads; default all cores (CONTRACT.md --threads). */
  threads?: number;
  optimization?: OptimizationLevel;
  /**
   * Keep ORT's optimised model on disk under `cache.dir`, keyed by `cache.key` (the caller names the checkpoint's
   * files and what changes the weights' values) and by the graph's own structure. A later session with the same
   * key skips reading, quantising and optimising.
   */
  cache?: ModelCache;
  /** Told what loading is doing (a large model takes minutes: a progress bar shows it). */
  progress?: (event: LoadProgress) => void;
  /**
   * ORT's CPU memory arena (default on). Off, tensors go back to the system as they die: a training step's peak
   * is ~1/3 lower (measured on a LLaMA-shaped adapter step), but every step's tensors are fresh pages, which can
   * cost most of a step (the lab's stage 0: 3.2 s a step off, 0.85 s on).
   */
  memArena?: boolean;
}

/**
 * Loading's phases: the weights prepared (read, converted, quantised) and written for ORT, in bytes; ORT
 * optimising the graph; or a model read back from the cache.
 */
export type LoadProgress = { phase: 'weights'; done: number; total: number } | { phase: 'optimising' } | { phase: 'cached' };

/**
 * A folder of optimised models. One that cannot be written (read-only, full, not a folder) is not an error: the
 * session is built without it, `warn` is told once why, and the cache stays off for the rest of the process.
 */
export interface ModelCache {
  dir: string;
  key: string;
  warn?(message: string): void;
}

/** Cache folders found unusable in this process: each is reported once, then left alone. */
const unusable = new Set<string>();

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
    const g = typeof graph === 'function' ? graph() : graph;
    if (opts.cache && !unusable.has(opts.cache.dir)) {
      const cached = await Session.fromCache(g, opts, opts.cache);
      if (cached) return cached;
    }
    return Session.fromGraphUncached(g, opts);
  }

  /** Builds the session without the cache: in memory, or through a private temp folder when the weights are large. */
  private static async fromGraphUncached(g: Graph, opts: SessionOptions): Promise<Session> {
    if (g.weightBytes() <= EMBEDDED_WEIGHTS_LIMIT) {
      return Session.fromModel(await toOnnxBytes(g), opts);
    }
    // Too large to embed: write model + external data to a private temp dir; ORT maps the weights from the file.
    const dir = await mkdtemp(join(tmpdir(), 'egret-model-'));
    try {
      await writeOnnxModel(g, join(dir, 'model.onnx'), undefined, weightProgress(opts));
      opts.progress?.({ phase: 'optimising' });
      return new Session(await ort.InferenceSession.create(join(dir, 'model.onnx'), baseOptions(opts)), 'file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * The session from the cache (a hit), or built and optimised into it (a miss). Undefined when the cache folder
   * cannot take the model: the caller builds without it.
   */
  private static async fromCache(g: Graph, opts: SessionOptions, cache: ModelCache): Promise<Session | undefined> {
    const base = baseOptions(opts);
    const dir = join(cache.dir, cacheEntryName(g, opts, cache.key));
    const optimized = join(dir, 'optimized.onnx');
    if (await exists(optimized)) {
      try {
        opts.progress?.({ phase: 'cached' });
        return new Session(await ort.InferenceSession.create(optimized, { ...base, graphOptimizationLevel: 'disabled' }), 'cache');
      } catch {
        // Unreadable (a disk error, a file changed by hand): built again below, into a fresh folder.
        await rm(dir, { recursive: true, force: true }).catch(() => {});
      }
    }
    // Build and optimise in a private folder, then rename it into place: a crash never leaves a partial model
    // under the key, and concurrent builders of the same key do not see each other's files.
    const work = `${dir}.tmp-${process.pid}-${Date.now()}`;
    const raw = join(work, 'model.onnx');
    const giveUp = async (err: unknown) => {
      await rm(work, { recursive: true, force: true }).catch(() => {});
      unusable.add(cache.dir);
      cache.warn?.(`the model cache in ${cache.dir} cannot be written (${describeError(err)}); running without it`);
    };
    try {
      await writeOnnxModel(g, raw, undefined, weightProgress(opts));
    } catch (err) {
      if (!isStorageError(err)) {
        await rm(work, { recursive: true, force: true }).catch(() => {});
        throw err;
      }
      await giveUp(err);
      return undefined;
    }
    let session: ort.InferenceSession;
    opts.progress?.({ phase: 'optimising' });
    try {
      session = await ort.InferenceSession.create(raw, {
        ...base,
        // Not ORT's warning that the saved model may hold optimisations for this CPU only: the key names the CPU.
        logSeverityLevel: 3,
        optimizedModelFilePath: join(work, 'optimized.onnx'),
        extra: { session: { optimized_model_external_initializers_file_name: 'optimized.onnx.data', optimized_model_external_initializers_min_size_in_bytes: '1024' } },
      });
    } catch (err) {
      // The raw model is written, so the folder takes files: either the optimised model did not fit (a full disk),
      // or the model itself is wrong. Loading it without saving tells which.
      let plain: ort.InferenceSession;
      try {
        plain = await ort.InferenceSession.create(raw, base);
      } catch (modelError) {
        await rm(work, { recursive: true, force: true }).catch(() => {});
        throw modelError;
      }
      await giveUp(err);
      return new Session(plain, 'file');
    }
    await rm(raw, { force: true });
    await rm(`${raw}.data`, { force: true });
    await rename(work, dir).catch(async () => rm(work, { recursive: true, force: true }));
    return new Session(session, 'file');
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

/**
 * A failed system call (read-only, full, not a folder, no permission…): the cache folder cannot take the model.
 * (A read-only file system may even answer mkdir with ENOENT, so no list of codes.)
 */
function isStorageError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException | undefined)?.syscall === 'string';
}

/** A system call's error code, or the gist of ORT's message (which starts with its source location). */
function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code) return e.code;
  const message = e instanceof Error ? e.message : String(err);
  return message.split(/ FAIL : \S+ /).at(-1)!.split('\n')[0]!;
}

function weightProgress(opts: SessionOptions): ((done: number, total: number) => void) | undefined {
  const progress = opts.progress;
  return progress && ((done, total) => progress({ phase: 'weights', done, total }));
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

function cacheEntryName(g: Graph, opts: SessionOptions, key: string): string {
  // The optimised model depends on the graph's structure (so that a change to a model's code misses even within a
  // version), on the optimisation level, on ORT, and on the CPU ORT optimised it for (it may use kernels and
  // layouts only that CPU has), as well as on the weights the key names.
  const cpu = [process.arch, cpus()[0]?.model ?? 'unknown', availableParallelism()];
  return createHash('sha256')
    .update(JSON.stringify([key, opts.optimization ?? 'all', ort.env.versions.node, cpu]))
    .update(graphStructure(g))
    .digest('hex').slice(0, 32);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

export { ort };
