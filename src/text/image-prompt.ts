import type { Tokenizer } from './tokenizer.js';

/** LLaVA's IMAGE_TOKEN_INDEX: the id that marks where an image's visual tokens go (llava/constants.py). */
export const IMAGE_TOKEN_INDEX = -200;
export const IMAGE_PLACEHOLDER = '<image>';

/**
 * LLaVA's `tokenizer_image_token` (llava/mm_utils.py): the prompt is split on `<image>` and every chunk is encoded
 * on its own with the tokenizer's defaults (so each chunk gets its own dummy-prefix '▁' and BOS). When the first
 * chunk starts with BOS, that BOS is kept once and the first id of every chunk is dropped; chunks are joined with
 * IMAGE_TOKEN_INDEX.
 */
export function tokenizeImagePrompt(tokenizer: Tokenizer, prompt: string): number[] {
  const chunks = prompt.split(IMAGE_PLACEHOLDER).map((chunk) => tokenizer.encode(chunk));
  const offset = chunks[0]![0] === tokenizer.bosId ? 1 : 0;
  const ids = offset === 1 ? [tokenizer.bosId] : [];
  chunks.forEach((chunk, i) => {
    if (i > 0) ids.push(IMAGE_TOKEN_INDEX);
    for (let j = offset; j < chunk.length; j++) ids.push(chunk[j]!);
  });
  return ids;
}
