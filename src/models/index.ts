import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import type { PreparedPrompt } from './prompt.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { RGBImage } from '../vision/image.js';
import type { TemplateName } from '../text/templates.js';
import { loadTokenizer } from '../text/load.js';
import { IMAGE_TOKEN_INDEX } from '../text/image-prompt.js';
import type { ComputeDtype } from './linear.js';
import { readJson } from './llama/config.js';
import { CausalLM, openLlama, type BuildOptions } from './llama/load.js';
import { EGRET_VERSION } from '../version.js';
import { loadLlava } from './llava.js';
import { loadLlavaHr } from './llava-hr.js';
import type { Decoder } from './decoder.js';
import { loadLavin, type LavinFiles } from './lavin/load.js';
import type { LoadProgress } from '../runtime/session.js';

export interface LoadModelOptions {
  dtype?: ComputeDtype;
  threads?: number;
  /** A folder where ORT's optimised models are kept between runs (keyed by the checkpoint's files and the options). */
  cacheDir?: string;
  /** A LaVIN model: the LLaMA in the directory with these CLIP and adapter files. */
  lavin?: LavinFiles;
  /** Told once why the cache folder cannot be used (default: a `warning:` line on stderr); the load goes on without it. */
  warn?(message: string): void;
  /** Told what loading the language model is doing (see LoadProgress). */
  progress?: (event: LoadProgress) => void;
}

/**
 * What identifies a model directory's weights for the cache: every file's name, size and modification time,
 * with egret's version (a release may prepare weights differently) and the compute dtype. The graph's own
 * structure is part of the key too (Session.fromGraph adds it).
 */
export async function cacheKey(dir: string, opts: LoadModelOptions, version = EGRET_VERSION): Promise<string> {
  const names = (await readdir(dir)).sort();
  const files = await Promise.all(names.map(async (name) => {
    const s = await stat(join(dir, name));
    return s.isFile() ? [name, s.size, s.mtimeMs] : [name, 'dir'];
  }));
  // A LaVIN decoder holds its checkpoint's adapters.
  const adapter = opts.lavin ? await stat(opts.lavin.adapter).then((s) => [resolve(opts.lavin!.adapter), s.size, s.mtimeMs]) : [];
  return JSON.stringify([version, resolve(dir), opts.dtype ?? 'fp32', files, ...adapter]);
}

const warnOnStderr = (message: string) => void process.stderr.write(`warning: ${message}\n`);

/** A model as commands and the server use it: a tokenizer, a decoder, and prompt preparation. */
export interface ChatModel {
  readonly family: string;
  readonly lm: CausalLM;
  readonly decoder: Decoder;
  embed(ids: readonly number[]): Float32Array;
  readonly tokenizer: Tokenizer;
  readonly defaultTemplate: TemplateName;
  /**
   * Token ids (IMAGE_TOKEN_INDEX where each image's visual tokens go, in order) and the decoded images → the
   * decoder's input. Each image is encoded once.
   */
  prepare(ids: readonly number[], images: readonly RGBImage[]): Promise<PreparedPrompt>;
  dispose(): Promise<void>;
}

/** Loads the model in `dir`, detecting its layout from its files (CONTRACT.md, "Models"). */
export async function loadModel(dir: string, loadOpts: LoadModelOptions = {}): Promise<ChatModel> {
  // Keyed once the directory is known to be a model (a missing one is reported as such, below).
  const withCache = async (): Promise<LoadModelOptions & BuildOptions> => loadOpts.cacheDir
    ? { ...loadOpts, cache: { dir: loadOpts.cacheDir, key: await cacheKey(dir, loadOpts), warn: loadOpts.warn ?? warnOnStderr } }
    : loadOpts;
  const configPath = join(dir, 'config.json');
  const config = (await stat(configPath).then((s) => s.isFile(), () => false)) ? await readJson(configPath) : undefined;
  if (loadOpts.lavin) return loadLavin(dir, loadOpts.lavin, withCache);
  // LLaVA-HR's config also says model_type llava; its multipath vision tower is what sets it apart.
  if (config?.['is_multipath_encoder'] === true) return loadLlavaHr(dir, config, await withCache());
  if (config?.['model_type'] === 'llava') return loadLlava(dir, config, await withCache());
  const weights = await openLlama(dir);
  const opts = await withCache().catch(async (err: unknown) => {
    await weights.source.close();
    throw err;
  });
  let lm: CausalLM;
  let tokenizer: Tokenizer;
  try {
    tokenizer = await loadTokenizer(dir);
    lm = await CausalLM.build(weights, opts);
  } finally {
    // Every weight is in the session now (or the load failed): the checkpoint files can be closed.
    await weights.source.close();
  }
  return {
    family: 'llama',
    lm,
    decoder: lm.decoder,
    tokenizer,
    defaultTemplate: 'raw',
    embed: (ids) => lm.embed(ids),
    async prepare(ids, images) {
      if (images.length > 0 || ids.includes(IMAGE_TOKEN_INDEX)) throw new InputError(`${dir} is a text-only model: it takes no images`);
      return { embeds: lm.embed(ids), positions: ids.map((_, i) => i), textIds: ids, visual: [] };
    },
    dispose: () => lm.dispose(),
  };
}
