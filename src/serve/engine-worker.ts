/**
 * The inference side of the server, run in a worker thread (WorkerHost): it holds the ChatModel and turns a
 * validated chat request into a prompt and a generation, streaming the text back. Everything that touches the
 * model, the tokenizer or image pixels happens here, off the thread that serves HTTP.
 */
import { Batcher } from '../generate/batcher.js';
import { checkContext, type GenerateOptions, type GenerationResult } from '../generate/generate.js';
import { requestFlops } from '../generate/flops.js';
import { withdrawVisualTokens } from '../methods/vtw.js';
import { loadModel, type ChatModel, type LoadModelOptions } from '../models/index.js';
import type { PreparedPrompt } from '../models/prompt.js';
import { Channel } from '../runtime/channel.js';
import { writeBatchState } from './batch-state.js';
import { tokenizeImagePrompt } from '../text/image-prompt.js';
import { renderPrompt, type ChatTurn } from '../text/templates.js';
import { decodeImage } from '../vision/decode.js';
import type { ImageLimits } from '../vision/limits.js';

export interface EngineInfo {
  family: string;
  maxPositions: number;
  layers: number;
}

export interface EngineRequest {
  turns: ChatTurn[];
  /** Encoded image files, in the order of the turns' images. */
  images: Uint8Array[];
  options: Omit<GenerateOptions, 'signal'>;
  /** Withdraw visual tokens before this decoder layer (VTW). */
  vtwLayer?: number;
}

/** The first event: the prompt is ready and fits (errors before it are the request's fault). */
export interface PromptEvent {
  type: 'prompt';
  promptTokens: number;
}

export interface TextEvent {
  type: 'text';
  text: string;
}

export type EngineEvent = PromptEvent | TextEvent;

export interface EngineResult {
  finishReason: 'stop' | 'length' | 'cancelled';
  promptTokens: number;
  completionTokens: number;
  visualTokens: number;
  /** Visual tokens that reach the last decoder layer (fewer with VTW). */
  visualTokensKept: number;
  vtwLayer: number | null;
  flops: number;
  prefillMs: number;
  decodeMs: number;
}

export interface ServingOptions {
  /** Most sequences decoding together. */
  maxBatch: number;
  /** BATCH_STATE.length × 8 bytes, shared with the HTTP thread (batch-state.ts). */
  state: SharedArrayBuffer;
}

let model: ChatModel | undefined;
let batcher: Batcher | undefined;
let imageLimits: ImageLimits = {};

export async function load(dir: string, opts: LoadModelOptions, limits: ImageLimits, serving: ServingOptions): Promise<EngineInfo> {
  model = await loadModel(dir, opts);
  imageLimits = limits;
  const state = new BigInt64Array(serving.state);
  const b: Batcher = new Batcher(model, serving.maxBatch, () => writeBatchState(state, { batchSize: b.batchSize, waiting: b.waitingCount, ...b.counters }));
  batcher = b;
  const { maxPositions, layers } = model.decoder.config;
  return { family: model.family, maxPositions, layers };
}

export async function* chat(request: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineEvent, EngineResult> {
  if (!model || !batcher) throw new Error('the engine has no model loaded');
  const m = model;
  // Images first: an undecodable or oversized image is reported as such, whatever the model takes.
  const images = await Promise.all(request.images.map((bytes, i) => decodeImage(bytes, { ...imageLimits, name: `image ${i + 1}` })));
  const ids = tokenizeImagePrompt(m.tokenizer, renderPrompt(m.defaultTemplate, request.turns));
  let prompt = await m.prepare(ids, images);
  if (request.vtwLayer !== undefined) prompt = withdrawVisualTokens(prompt, request.vtwLayer, m.decoder.config.layers);
  checkContext([prompt], m.decoder.config.maxPositions);
  yield { type: 'prompt', promptTokens: prompt.positions.length };
  // The sequence joins the batch of every other request's; its text comes back through a channel.
  const texts = new Channel<string, GenerationResult>();
  batcher.submit(prompt, { ...request.options, signal }, (_id, text) => texts.push(text)).then((r) => texts.end(r), (err: unknown) => texts.fail(err));
  const run = texts[Symbol.asyncIterator]();
  for (;;) {
    const step = await run.next();
    if (step.done) {
      const r = step.value;
      return {
        finishReason: r.finishReason,
        promptTokens: r.stats.promptTokens,
        completionTokens: r.stats.newTokens,
        visualTokens: prompt.visual.length,
        visualTokensKept: visualTokensKept(prompt),
        vtwLayer: request.vtwLayer ?? null,
        flops: requestFlops(m.decoder, prompt, r.stats.newTokens),
        prefillMs: r.stats.prefillMs,
        decodeMs: r.stats.decodeMs,
      };
    }
    yield { type: 'text', text: step.value };
  }
}

/** Follows the prompt's per-layer keep plan to count the visual tokens still present after the last one. */
function visualTokensKept(prompt: PreparedPrompt): number {
  let tokens = prompt.positions.map((_, i) => i);
  // keep[0] is never applied: layer 0 sees every token (DecoderCall.keep).
  for (const keep of (prompt.keep ?? []).slice(1)) if (keep) tokens = keep.map((j) => tokens[j]!);
  const visual = new Set(prompt.visual);
  return tokens.filter((i) => visual.has(i)).length;
}

export async function unload(): Promise<void> {
  await model?.dispose();
  model = undefined;
  batcher = undefined;
}
