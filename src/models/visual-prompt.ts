import { InputError } from '../errors.js';
import type { PreparedPrompt } from './prompt.js';
import { IMAGE_TOKEN_INDEX } from '../text/image-prompt.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { RGBImage } from '../vision/image.js';
import type { ChatModel } from './index.js';
import type { CausalLM } from './llama/load.js';
import { ort, type Session } from '../runtime/session.js';
import type { TemplateName } from '../text/templates.js';
import type { Value } from '../graph/ir.js';

/**
 * The projector's output must be as wide as the language model's hidden size: a checkpoint whose projector disagrees
 * with its config is an input error naming the projector's last weight and both widths.
 */
export function checkVisualWidth(visual: Value, hidden: number, projectorWeight: string): void {
  const width = visual.dim(-1);
  if (width !== hidden) {
    throw new InputError(`checkpoint tensor '${projectorWeight}' makes visual tokens ${String(width)} wide, but the language model's hidden size is ${hidden} (config)`);
  }
}

/** What a LLaVA-style model (a vision tower whose tokens replace each image placeholder) brings to its ChatModel. */
export interface VisualModelParts {
  family: string;
  lm: CausalLM;
  tokenizer: Tokenizer;
  /** Visual tokens ([tokens, hidden]) of each image, in order; called only with images not encoded before. */
  encode(images: readonly RGBImage[]): Promise<Float32Array[]>;
  /** Further checks of a prompt's ids (e.g. a layout's own placeholder id). */
  checkIds?(ids: readonly number[]): void;
  /** Releases the vision tower (the language model is released by the ChatModel). */
  disposeVision(): Promise<void>;
  /** The template prompts are written in by default (vicuna_v1, as LLaVA's released models). */
  defaultTemplate?: TemplateName;
  /** The model's own changes to a prepared prompt (LaVIN: positions after its modality token, its routes). */
  finish?(prompt: PreparedPrompt, images: readonly RGBImage[]): PreparedPrompt;
  /** Matrix FLOPs of the vision tower and projector for one image (models/flops.ts). */
  flopsPerImage: number;
}

/**
 * The ChatModel of a LLaVA-style model: vicuna_v1 prompts whose -200 placeholders take each image's visual
 * tokens. A chat re-sends its images with every turn: each decoded image is encoded once, for as long as it lives.
 */
export function visualChatModel(parts: VisualModelParts): ChatModel {
  const { lm } = parts;
  const encoded = new WeakMap<RGBImage, Float32Array>();
  return {
    family: parts.family,
    lm,
    decoder: lm.decoder,
    tokenizer: parts.tokenizer,
    defaultTemplate: parts.defaultTemplate ?? 'vicuna_v1',
    embed: (ids) => lm.embed(ids),
    async prepare(ids, images) {
      checkImageSlots(ids, images.length);
      parts.checkIds?.(ids);
      const fresh = [...new Set(images.filter((img) => !encoded.has(img)))];
      if (fresh.length > 0) (await parts.encode(fresh)).forEach((tokens, i) => encoded.set(fresh[i]!, tokens));
      const prompt = spliceVisualTokens(ids, (text) => lm.embed(text), images.map((img) => encoded.get(img)!), lm.config.hidden);
      const counted = images.length === 0 ? prompt : { ...prompt, preparationFlops: images.length * parts.flopsPerImage };
      return parts.finish ? parts.finish(counted, images) : counted;
    },
    async dispose() {
      await Promise.all([lm.dispose(), parts.disposeVision()]);
    },
  };
}

/** Refuses a prompt whose image placeholders (IMAGE_TOKEN_INDEX) do not match the images given, one each. */
export function checkImageSlots(ids: readonly number[], images: number): void {
  const slots = ids.filter((id) => id === IMAGE_TOKEN_INDEX).length;
  if (slots !== images) {
    throw new InputError(`the prompt has ${slots} image placeholder${slots === 1 ? '' : 's'} (${IMAGE_TOKEN_INDEX} / <image>) but ${images} image${images === 1 ? ' was' : 's were'} given`);
  }
}

/**
 * The decoder input of a prompt whose i-th IMAGE_TOKEN_INDEX is replaced by image i's visual tokens
 * (`visual[i]` [tokens, hidden]) and whose other ids take their token embeddings, as LLaVA merges them
 * (llava/model/llava_arch.py prepare_inputs_labels_for_multimodal). Positions run 0..n-1 over the expanded
 * sequence. Call checkImageSlots first.
 */
export function spliceVisualTokens(ids: readonly number[], embed: (ids: readonly number[]) => Float32Array,
                                   visual: readonly Float32Array[], hidden: number): PreparedPrompt {
  const textIds = ids.filter((id) => id !== IMAGE_TOKEN_INDEX);
  const text = embed(textIds);
  const total = textIds.length + visual.reduce((n, v) => n + v.length / hidden, 0);
  const embeds = new Float32Array(total * hidden);
  const visualRows: number[] = [];
  let row = 0;
  let nextText = 0;
  let nextImage = 0;
  for (const id of ids) {
    if (id === IMAGE_TOKEN_INDEX) {
      const tokens = visual[nextImage++]!;
      embeds.set(tokens, row * hidden);
      for (let j = 0; j < tokens.length / hidden; j++) visualRows.push(row++);
    } else {
      embeds.set(text.subarray(nextText * hidden, ++nextText * hidden), row++ * hidden);
    }
  }
  return { embeds, positions: Array.from({ length: total }, (_, i) => i), textIds, visual: visualRows };
}

/**
 * Each image's rows of a vision graph's `output`, all images through `session` in one run as `pixel_values`
 * [images, 3, size, size] made by `preprocess` (the model's own pipeline).
 */
export async function encodeImages(session: Session, images: readonly RGBImage[], size: number, preprocess: (img: RGBImage, size: number) => Float32Array, output: string): Promise<Float32Array[]> {
  const per = 3 * size * size;
  const pixels = new Float32Array(images.length * per);
  images.forEach((img, i) => pixels.set(preprocess(img, size), i * per));
  const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [images.length, 3, size, size]) });
  const features = out[output]!.data as Float32Array;
  const stride = features.length / images.length;
  return images.map((_, i) => features.subarray(i * stride, (i + 1) * stride));
}
