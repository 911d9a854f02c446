/**
 * LaVIN's ScienceQA training data (util/datasets.py ScienceQADataSet, util/base_prompt.py QCM-ALE, and the sequence
 * lavin/model.py's insert_image_embeds builds from it), as the feeds of the training graph (buildLavinTrainingForward).
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { InputError } from '../errors.js';
import { ort } from '../runtime/session.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { scienceQaPrompt, scienceQaTarget } from '../text/templates.js';
import { loadImage } from '../vision/decode.js';
import { preprocessLavin } from '../vision/pipelines.js';
import type { SqaProblem } from './scienceqa.js';

/** One dataset item: datasets.py's `example` and `labels` (0 = padding / not a target), the image, the modality. */
export interface LavinSample {
  id: string;
  /** 1: the problem has an image, 0: text-only (the modality embedding's row). */
  indicator: 0 | 1;
  /** The image file, for image problems. */
  image?: string;
  example: Int32Array;
  labels: Int32Array;
}

/**
 * datasets.py: example = encode(prompt + target, BOS, EOS) (no separator: "Response:The answer is ..."), padded
 * with 0 or cut to `maxWords`; labels = the example with the prompt's tokens (BOS included) and the padding set to 0.
 * The problem's image lives in `imageDir`/<pid>/; it must exist.
 */
export function lavinSample(tokenizer: Tokenizer, problem: SqaProblem, imageDir: string, maxWords: number): LavinSample {
  if (problem.answer < 0 || problem.answer >= problem.choices.length) throw new InputError(`ScienceQA problem ${problem.id}: answer ${problem.answer} is not one of its ${problem.choices.length} choices`);
  const prompt = scienceQaPrompt(problem);
  const promptLength = tokenizer.encode(prompt, { bos: true, eos: false }).length;
  const ids = tokenizer.encode(prompt + scienceQaTarget(problem), { bos: true, eos: true }).slice(0, maxWords);
  const example = new Int32Array(maxWords);
  example.set(ids);
  const labels = example.slice();
  labels.fill(0, 0, Math.min(promptLength, maxWords));
  let image: string | undefined;
  if (problem.image !== undefined) {
    image = join(imageDir, problem.id, problem.image);
    if (!existsSync(image)) throw new InputError(`ScienceQA problem ${problem.id}: image ${image} is missing`);
  }
  return { id: problem.id, indicator: image === undefined ? 0 : 1, ...(image ? { image } : {}), example, labels };
}

/** What the batch builder needs of the model. */
export interface LavinSequenceSpec {
  /** The frozen token embedding table [vocab, hidden]. */
  embedTable: Float32Array;
  hidden: number;
  /** encode("Image: ") and encode("Image: N/A"), without BOS (model.py's prefix_img / prefix_nonimg). */
  prefixImage: readonly number[];
  prefixText: readonly number[];
  visualTokens: number;
  imageSize: number;
  maxWords: number;
}

/** A batch as the training graph takes it, and the layout it was built with. */
export interface LavinBatch {
  feeds: Record<string, ort.Tensor>;
  /** Rows per sequence: up to the last one with a target (later rows change neither loss nor gradients). */
  seq: number;
  /** [batch, seq - 1] int64: the label of row r + 1 for the logits of row r (0: ignored). */
  targets: BigInt64Array;
  /** [batch, maxWords]: the labels aligned to the whole sequence (modality token and inserted rows 0), before the shift. */
  seqLabels: Int32Array;
}

/** One sample's rows: what each row holds (a token id, visual token j, or the modality token) and its label. */
function sequenceRows(sample: LavinSample, spec: LavinSequenceSpec): { rows: ({ id: number } | { visual: number } | 'modality')[]; labels: number[] } {
  const prefix = sample.indicator === 1 ? spec.prefixImage : spec.prefixText;
  const visual = sample.indicator === 1 ? spec.visualTokens : 0;
  const ids = Array.from(sample.example);
  // insert_image_embeds: BOS, the prefix, the visual tokens, the rest; cut to max_words. Then the modality token
  // in front, cut again.
  const rows: ({ id: number } | { visual: number } | 'modality')[] = ['modality', { id: ids[0]! }, ...prefix.map((id) => ({ id })),
    ...Array.from({ length: visual }, (_, j) => ({ visual: j })), ...ids.slice(1).map((id) => ({ id }))];
  const labels = [0, sample.labels[0]!, ...new Array<number>(prefix.length + visual).fill(0), ...Array.from(sample.labels.subarray(1))];
  return { rows: rows.slice(0, spec.maxWords), labels: labels.slice(0, spec.maxWords) };
}

export async function lavinBatch(samples: readonly LavinSample[], spec: LavinSequenceSpec): Promise<LavinBatch> {
  const { hidden, maxWords, visualTokens, imageSize } = spec;
  const batch = samples.length;
  const layouts = samples.map((s) => sequenceRows(s, spec));
  const seqLabels = new Int32Array(batch * maxWords);
  layouts.forEach((l, b) => seqLabels.set(l.labels, b * maxWords));
  const lastTarget = Math.max(1, ...layouts.map((l) => l.labels.findLastIndex((x) => x !== 0)));
  const seq = lastTarget + 1;
  const text = new Float32Array(batch * seq * hidden);
  const visualRows = new Float32Array(batch * seq * visualTokens);
  const modalityRows = new Float32Array(batch * seq * 2);
  const targets = new BigInt64Array(batch * (seq - 1));
  const pixelCount = 3 * imageSize * imageSize;
  const pixels = new Float32Array(batch * pixelCount);
  for (const [b, { rows, labels }] of layouts.entries()) {
    for (let r = 0; r < seq; r++) {
      const row = rows[r]!;
      if (row === 'modality') modalityRows[(b * seq + r) * 2 + samples[b]!.indicator] = 1;
      else if ('visual' in row) visualRows[(b * seq + r) * visualTokens + row.visual] = 1;
      else text.set(spec.embedTable.subarray(row.id * hidden, (row.id + 1) * hidden), (b * seq + r) * hidden);
      if (r > 0) targets[b * (seq - 1) + r - 1] = BigInt(labels[r]!);
    }
    const image = samples[b]!.image;
    // A text-only sample's image is all zeros after normalisation (datasets.py), and its tokens go unused.
    if (image !== undefined) pixels.set(preprocessLavin(await loadImage(image), imageSize).pixelValues, b * pixelCount);
  }
  return {
    seq, targets, seqLabels,
    feeds: {
      pixel_values: new ort.Tensor('float32', pixels, [batch, 3, imageSize, imageSize]),
      text_embeds: new ort.Tensor('float32', text, [batch, seq, hidden]),
      visual_rows: new ort.Tensor('float32', visualRows, [batch, seq, visualTokens]),
      modality_rows: new ort.Tensor('float32', modalityRows, [batch, seq, 2]),
    },
  };
}
