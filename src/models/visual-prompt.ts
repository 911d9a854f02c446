import { InputError } from '../errors.js';
import type { PreparedPrompt } from './prompt.js';
import { IMAGE_TOKEN_INDEX } from '../text/image-prompt.js';

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
