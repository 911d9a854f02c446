import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { InputError } from '../errors.js';
import { checkContext, type PreparedPrompt } from '../generate/generate.js';
import { loadModel, type ChatModel, type LoadModelOptions } from '../models/index.js';
import { defaultCacheDir } from '../runtime/cache-dir.js';
import { SHIPPED_MODELS_DIR } from '../lab/shipped.js';
import { LoadDisplay } from './progress.js';
import type { ComputeDtype } from '../models/linear.js';
import type { LavinFiles } from '../models/lavin/load.js';
import { tokenizeImagePrompt } from '../text/image-prompt.js';
import { loadImage } from '../vision/decode.js';
import type { RGBImage } from '../vision/image.js';
import { readVtwSidecar, vtwSidecarPath, withdrawVisualTokens } from '../methods/vtw.js';
import { applyFastV, parseFastV } from '../methods/fastv.js';
import { isTemplateName, renderPrompt, TEMPLATE_NAMES, type TemplateName } from '../text/templates.js';
import { parseCommandLine, type CommandHelp } from './args.js';

/** Options every command that runs a model shares (CONTRACT.md "Models" and "Inputs"). */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  dtype: { type: 'string' },
  threads: { type: 'string' },
  prompt: { type: 'string' },
  template: { type: 'string' },
  ids: { type: 'string' },
  image: { type: 'string', multiple: true },
  'vtw-layer': { type: 'string' },
  fastv: { type: 'string' },
  'cache-dir': { type: 'string' },
  clip: { type: 'string' },
  adapter: { type: 'string' },
  'official-positions': { type: 'boolean' },
  'no-cache': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** Parsed options: the model options typed, a command's own ones as parsed. */
export type CommandValues = ModelValues & Record<string, string | boolean | string[] | undefined>;

/** Parses a model command's arguments: the model options and the command's own (`help.options`). */
export function parseCommandArgs(args: string[], help: CommandHelp): CommandValues {
  return parseCommandLine(args, { ...help, options: { ...MODEL_OPTIONS, ...help.options } }).values as CommandValues;
}

export type ModelValues = {
  [K in keyof typeof MODEL_OPTIONS]?: (typeof MODEL_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof MODEL_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string;
};

export function positiveInt(value: string | undefined, name: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InputError(`--${name} must be a positive integer, got '${value}'`);
  return Number(value);
}

/** --dtype, --threads and the cache options, checked; --clip and --adapter (both or neither) make the model a LaVIN. */
export function loadOptionsFromArgs(values: Pick<ModelValues, 'dtype' | 'threads' | 'cache-dir' | 'no-cache' | 'clip' | 'adapter' | 'official-positions'>): LoadModelOptions {
  const dtype = values.dtype ?? 'fp32';
  if (!['fp32', 'q8', 'q4'].includes(dtype)) throw new InputError(`--dtype must be fp32, q8 or q4, got '${dtype}'`);
  const threads = positiveInt(values.threads, 'threads');
  // More threads than this only oversubscribes the cores (and a huge number would exhaust the process).
  const most = 4 * availableParallelism();
  if (threads !== undefined && threads > most) throw new InputError(`--threads ${threads} is more than 4 × the ${availableParallelism()} cores here`);
  // Optimised models are kept between runs (--cache-dir, else the user's cache folder) unless --no-cache.
  if (values['no-cache'] && values['cache-dir'] !== undefined) throw new InputError('give either --cache-dir or --no-cache, not both');
  if (values['cache-dir'] === '') throw new InputError('--cache-dir needs a folder');
  const cacheDir = values['no-cache'] ? undefined : values['cache-dir'] ?? defaultCacheDir();
  return { dtype: dtype as ComputeDtype, threads, ...(cacheDir ? { cacheDir } : {}), ...lavinFromArgs(values) };
}

function lavinFromArgs(values: Pick<ModelValues, 'clip' | 'adapter' | 'official-positions'>): { lavin?: LavinFiles } {
  const { clip, adapter } = values;
  if (clip === undefined && adapter === undefined) {
    if (values['official-positions']) throw new InputError('--official-positions applies to LaVIN models only (give --clip and --adapter)');
    return {};
  }
  if (clip === undefined || adapter === undefined) throw new InputError('a LaVIN model needs both --clip FILE and --adapter FILE');
  return { lavin: { clip, adapter, officialPositions: values['official-positions'] === true } };
}

/** The lab's MRA model that ships with egret (docs/LAB.md): in the package, beside dist/, wherever it is installed. */
export const SHIPPED_MODEL = join(SHIPPED_MODELS_DIR, 'lab-mra');

/**
 * The model of `generate`, `chat` and `serve`: --model, else $EGRET_MODEL, else the shipped model. A LaVIN model
 * (--clip, --adapter) names its LLaMA directory: the shipped LLaVA-HR cannot be one.
 */
export function modelOrDefault(values: Pick<ModelValues, 'model' | 'clip' | 'adapter'>, usage: string): string {
  if (values.model) return values.model;
  if (values.clip !== undefined || values.adapter !== undefined) throw new InputError(`a LaVIN model needs --model (its LLaMA directory) besides --clip and --adapter; ${usage}`);
  const named = process.env['EGRET_MODEL'];
  if (named) return named;
  if (!existsSync(SHIPPED_MODEL)) throw new InputError(`no --model given, EGRET_MODEL is not set, and the shipped model is missing (${SHIPPED_MODEL}); give --model PATH`);
  return SHIPPED_MODEL;
}

/** Loads the model the options name, with a progress display on a TTY. */
export async function openModel(values: ModelValues, usage: string): Promise<ChatModel> {
  if (!values.model) throw new InputError(`--model is required; ${usage}`);
  const opts = loadOptionsFromArgs(values);
  const display = new LoadDisplay(opts.dtype === 'fp32' ? 'reading weights' : 'reading and quantising weights');
  try {
    return await loadModel(values.model, { ...opts, progress: display.report });
  } finally {
    display.finish();
  }
}

/** The images of --image, decoded: before the model loads, so that a wrong path or file costs no load. */
export function decodeImageArgs(values: ModelValues): Promise<RGBImage[]> {
  return Promise.all((values.image ?? []).map((file) => loadImage(file)));
}

/**
 * The prompt the options describe: --ids as given, or --prompt rendered with the template and tokenised, with the
 * images of --image (`decoded`: as decodeImageArgs gave them).
 */
export async function promptFromArgs(model: ChatModel, values: ModelValues, usage: string, decoded?: readonly RGBImage[]): Promise<{ ids: number[]; prompt: PreparedPrompt }> {
  const images = values.image ?? [];
  let ids: number[];
  if (values.ids !== undefined) {
    if (values.prompt !== undefined) throw new InputError('give either --prompt or --ids, not both');
    ids = values.ids.split(',').map((s) => {
      const t = s.trim();
      if (!/^-?\d+$/.test(t)) throw new InputError(`--ids: '${t}' is not an integer`);
      return Number(t);
    });
  } else if (values.prompt !== undefined) {
    const template = values.template ?? model.defaultTemplate;
    if (!isTemplateName(template)) throw new InputError(`--template must be one of ${TEMPLATE_NAMES.join(', ')}, got '${template}'`);
    ids = tokenizeImagePrompt(model.tokenizer, renderPrompt(template as TemplateName, [{ role: 'user', text: values.prompt, images: images.length }]));
  } else {
    throw new InputError(`--prompt or --ids is required; ${usage}`);
  }
  const prompt = await model.prepare(ids, decoded ?? (await decodeImageArgs(values)));
  return { ids, prompt: await applyMethods(model, prompt, values) };
}

/**
 * The token-reduction methods the options ask for, applied to a prepared prompt. `--vtw-layer K` withdraws visual
 * tokens before layer K; without it the layer calibrated for this model (`egret calibrate vtw --save`) is used;
 * `--vtw-layer off` disables it. `--fastv K:R` prunes the share R of visual tokens from layer K on instead.
 */
export async function applyMethods(model: ChatModel, prompt: PreparedPrompt, values: ModelValues): Promise<PreparedPrompt> {
  // Before any compute, FastV's ranking pass included.
  checkContext([prompt], model.decoder.config.maxPositions);
  const layer = await vtwLayerFromArgs(values);
  if (values.fastv !== undefined) return (await applyFastV(model.decoder, [prompt], parseFastV(values.fastv)))[0]!;
  return layer === undefined ? prompt : withdrawVisualTokens(prompt, layer, model.decoder.config.layers);
}

/**
 * The VTW layer K the options select (see applyMethods), or undefined for none; `egret eval run` records it.
 * With --fastv there is none: the calibrated layer is not used, and an explicit --vtw-layer K is refused.
 */
export async function vtwLayerFromArgs(values: ModelValues): Promise<number | undefined> {
  const option = values['vtw-layer'];
  if (values.fastv !== undefined) {
    if (option !== undefined && option !== 'off') throw new InputError('--fastv and --vtw-layer are alternatives: give one');
    return undefined;
  }
  if (option === 'off') return undefined;
  if (option !== undefined) return positiveInt(option, 'vtw-layer');
  return (await readVtwSidecar(vtwSidecarPath(values.model!, values.adapter)))?.layer;
}
