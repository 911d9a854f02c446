/**
 * The lab's small-print evaluation, in process: each held-out image asked as `egret generate` asks it (the model's
 * own template, LLaVA's short-answer instruction), greedy, the answer compared with the code. Counts exact matches
 * and matching characters, and the work and time of each request's prefill (what VTW and MRA's cost argument are
 * about).
 */
import { generateAll } from '../generate/generate.js';
import { requestFlops } from '../generate/flops.js';
import { withdrawVisualTokens } from '../methods/vtw.js';
import type { ChatModel } from '../models/index.js';
import { tokenizeImagePrompt } from '../text/image-prompt.js';
import { renderPrompt } from '../text/templates.js';
import { decodeImage } from '../vision/decode.js';
import { smallPrintMessage } from './datasets.js';
import { renderSmallPrint } from './smallprint.js';

export interface SmallPrintScore {
  samples: number;
  /** Share of answers equal to the code. */
  exact: number;
  /** Share of the codes' characters answered at their place. */
  characters: number;
  /** Mean FLOPs of a request's prefill (the image's encoding included) and mean prefill time, ms. */
  prefillFlops: number;
  prefillMs: number;
  /** Up to five (answer, code) pairs, to show what the model says. */
  examples: [string, string][];
}

export interface SmallPrintEvalOptions {
  seed: number;
  count: number;
  /** Withdraw visual tokens before this decoder layer (VTW). */
  vtwLayer?: number;
  onProgress?: (done: number) => void;
}

/** The share of `code`'s characters that `answer` has at the same place. */
export function matchingCharacters(answer: string, code: string): number {
  let same = 0;
  for (let i = 0; i < code.length; i++) if (answer[i] === code[i]) same++;
  return same;
}

/** A small-print question's prompt ids as `egret generate` asks it of `model` (its template, LLaVA's instruction). */
export function smallPrintPromptIds(model: ChatModel, question: string): number[] {
  return tokenizeImagePrompt(model.tokenizer, renderPrompt(model.defaultTemplate, [{ role: 'user', text: smallPrintMessage(question), images: 1 }]));
}

/** What is asked of an image: a small-print sample of egret's renderer, or one drawn by any other program. */
export interface CodeImage {
  png: Uint8Array;
  question: string;
  code: string;
}

/** Scores `model` on images 0 … count − 1 that `imageAt` gives (read one at a time). */
export async function scoreCodes(model: ChatModel, count: number, imageAt: (index: number) => Promise<CodeImage>, opts: Pick<SmallPrintEvalOptions, 'vtwLayer' | 'onProgress'> = {}): Promise<SmallPrintScore> {
  let exact = 0, characters = 0, letters = 0, flops = 0, ms = 0;
  const examples: [string, string][] = [];
  for (let index = 0; index < count; index++) {
    const sample = await imageAt(index);
    let prompt = await model.prepare(smallPrintPromptIds(model, sample.question), [await decodeImage(sample.png)]);
    if (opts.vtwLayer !== undefined) prompt = withdrawVisualTokens(prompt, opts.vtwLayer, model.decoder.config.layers);
    const [result] = await generateAll(model, [prompt], { maxNewTokens: 12, temperature: 0 });
    const answer = result!.text.trim();
    if (answer === sample.code) exact++;
    characters += matchingCharacters(answer, sample.code);
    letters += sample.code.length;
    flops += requestFlops(model.decoder, prompt, 0);
    ms += result!.stats.prefillMs;
    if (examples.length < 5) examples.push([answer, sample.code]);
    opts.onProgress?.(index + 1);
  }
  return { samples: count, exact: exact / count, characters: characters / letters, prefillFlops: flops / count, prefillMs: ms / count, examples };
}

/** Scores `model` on the small-print task's held-out samples 0 … count − 1 of `seed`. */
export function scoreSmallPrint(model: ChatModel, opts: SmallPrintEvalOptions): Promise<SmallPrintScore> {
  return scoreCodes(model, opts.count, (index) => renderSmallPrint(opts.seed, index), opts);
}
