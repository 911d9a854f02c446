/**
 * The decoder's side of lab training: a small-print example's token rows, the batch feeds of its answer, and the
 * aids that tell the decoder where to look and what place in the code a row predicts (docs/LAB.md, "Models trained
 * from scratch"). Shared by the whole model's training (train-visual.ts) and the read-out on synthetic tokens
 * (readout-probe.ts).
 */
import type { Graph, Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { identityLayout, WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { wholeSequenceFeeds } from '../models/decoder.js';
import { linear } from '../models/linear.js';
import { causalMask } from '../runtime/kv-cache.js';
import { ort } from '../runtime/session.js';
import { IMAGE_TOKEN_INDEX, tokenizeImagePrompt } from '../text/image-prompt.js';
import { renderPrompt } from '../text/templates.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { crossEntropy, headsAttentionCrossEntropy } from '../train/loss.js';
import type { TensorSpec } from '../train/scratch.js';
import { smallPrintMessage } from './datasets.js';
import { IGNORE } from './reading.js';
import { MAX_CODE_LENGTH } from './smallprint.js';

/** One example's token rows: ids before the image, ids after it (question, answer, </s>), and its targets. */
export interface Example {
  before: number[];
  after: number[];
  /** Index in `after` of the answer's first token. */
  answerAt: number;
  /** Index in `after` of each code character's token (a code is spelt one character a piece: datasets.ts). */
  codeAt: number[];
}

export function smallPrintExample(tokenizer: Tokenizer, question: string, code: string, shortAnswer: boolean): Example {
  const text = shortAnswer ? smallPrintMessage(question) : question;
  const rendered = renderPrompt('vicuna_v1', [{ role: 'user', text, images: 1 }]);
  const prompt = tokenizeImagePrompt(tokenizer, rendered);
  const full = tokenizeImagePrompt(tokenizer, `${rendered} ${code}`);
  if (full.slice(0, prompt.length).some((id, i) => id !== prompt[i])) throw new Error(`the answer '${code}' changes the prompt's tokens`);
  const image = prompt.indexOf(IMAGE_TOKEN_INDEX);
  const after = [...full.slice(image + 1), tokenizer.eosId];
  const codeAt = [...code].map((_, k) => after.length - 1 - code.length + k);
  if (codeAt.some((j, k) => tokenizer.decode([after[j]!]).trim() !== code[k])) throw new Error(`the answer '${code}' is not spelt one character a token`);
  return { before: prompt.slice(0, image), after, answerAt: prompt.length - image - 1, codeAt };
}

/**
 * The rows of one example where its answer is scored, in a sequence whose text after the image starts at row
 * `offset` (row r predicts the token at r + 1): from the row before the answer to the row before </s>, or with
 * `firstOnly` the code's first character's alone; and the row that predicts each code character k (the attention
 * aid's).
 */
export function answerRows(e: Example, offset: number, firstOnly: boolean): { targets: { row: number; token: number }[]; code: { k: number; row: number }[] } {
  const row = (j: number) => offset + j - 1;
  const scored = firstOnly ? [e.codeAt[0]!] : Array.from({ length: e.after.length - e.answerAt }, (_, i) => e.answerAt + i);
  return { targets: scored.map((j) => ({ row: row(j), token: e.after[j]! })), code: e.codeAt.map((j, k) => ({ k, row: row(j) })) };
}

/** The attention aid's targets for one batch (answerFeeds). */
export interface AttentionAid {
  heads: number;
  /** The visual token where example b's k-th code character lies (negative: nowhere). */
  cell: (b: number, k: number) => number;
  /** The other aided heads at that row look at row 0 (<s>): only head k mod `heads` brings the cell's content. */
  sink?: boolean;
}

/**
 * A batch's text feeds, its sequences laid out as the ids before the image, `visual` visual tokens, then the ids
 * after it (padded at the end): the whole-sequence positions and causal mask, before_ids, after_ids, the answer's
 * targets (answerRows) and, with `aid`, the attention aid's: at the row that predicts the code's k-th character of
 * example b, head k mod `aid.heads` is told to look at visual token `aid.cell(b, k)` (nowhere when it is negative).
 * With `positions`, position_targets: k at that row (the position aid's, positionAidLoss).
 */
export function answerFeeds(examples: readonly Example[], visual: number, firstOnly: boolean, aid?: AttentionAid, positions = false): Record<string, ort.Tensor> {
  const B = examples.length;
  const before = examples[0]!.before.length;
  const after = Math.max(...examples.map((e) => e.after.length));
  const seq = before + visual + after;
  const afterIds = new BigInt64Array(B * after);
  const targets = new BigInt64Array(B * seq).fill(BigInt(IGNORE));
  const look = aid && new BigInt64Array(B * aid.heads * seq).fill(BigInt(IGNORE));
  const place = positions ? new BigInt64Array(B * seq).fill(BigInt(IGNORE)) : undefined;
  examples.forEach((e, b) => {
    e.after.forEach((id, j) => (afterIds[b * after + j] = BigInt(id)));
    const rows = answerRows(e, before + visual, firstOnly);
    for (const { row, token } of rows.targets) targets[b * seq + row] = BigInt(token);
    if (place) for (const { k, row } of rows.code) place[b * seq + row] = BigInt(k);
    if (!aid || !look) return;
    for (const { k, row } of rows.code) {
      const cell = aid.cell(b, k);
      if (cell < 0) continue;
      for (let h = 0; h < aid.heads; h++) {
        if (h === k % aid.heads) look[(b * aid.heads + h) * seq + row] = BigInt(before + cell);
        else if (aid.sink) look[(b * aid.heads + h) * seq + row] = 0n;
      }
    }
  });
  return {
    ...wholeSequenceFeeds(B, seq, causalMask(new Array(B).fill(0), new Array(B).fill(seq), seq, 0)),
    before_ids: new ort.Tensor('int64', BigInt64Array.from(examples.flatMap((e) => e.before.map(BigInt))), [B, before]),
    after_ids: new ort.Tensor('int64', afterIds, [B, after]),
    targets: new ort.Tensor('int64', targets, [B, seq]),
    ...(aid && look ? { attention_targets: new ort.Tensor('int64', look, [B, aid.heads, seq]) } : {}),
    ...(place ? { position_targets: new ort.Tensor('int64', place, [B, seq]) } : {}),
  };
}

/** Decoder layer `layer`'s value (negative: from the last); `option` names the setting in the error when there is none. */
function ofLayer(values: readonly Value[], layer: number, option: string): Value {
  const value = values.at(layer);
  if (!value) throw new Error(`${option} ${layer}: the decoder has ${values.length} layers`);
  return value;
}

/**
 * The attention aid's loss: the cross-entropy of the first `heads` heads' attention logits of decoder `layer`
 * (negative: from the last) against the graph's input attention_targets [batch, heads, seq].
 */
export function attentionAidLoss(attention: readonly Value[], layer: number, heads: number): Value {
  const aided = ofLayer(attention, layer, 'attentionLayer');
  return headsAttentionCrossEntropy(aided, heads, aided.graph.input('attention_targets', 'int64', ['batch', heads, 'seq']), IGNORE);
}

export const POSITION_HEAD = 'lab_position_head';

/** The position aid's linear head: decoder width → a code character's place k. Trained along, never saved. */
export function positionHeadSpecs(width: number): Map<string, TensorSpec> {
  return new Map([[`${POSITION_HEAD}.weight`, { shape: [MAX_CODE_LENGTH, width], init: { normal: 0.02 } }]]);
}

/**
 * The position aid's loss: a linear head on decoder `layer`'s output rows told, at the row that predicts the code's
 * k-th character, that k is its place (the graph's input position_targets [batch, seq]). A LLaMA has no absolute
 * positions: a row must work out how far into the code it is before it can ask a cell for that character, and
 * `egret lab readout` with k given at those rows read far faster than without (docs/LAB.md, twelfth session).
 */
export function positionAidLoss(g: Graph, source: TensorSource, hidden: readonly Value[], layer: number): Value {
  const rows = ofLayer(hidden, layer, 'positionLayer');
  const logits = linear(new WeightScope(g, source, '', identityLayout).at(POSITION_HEAD), 'weight', rows, 'fp32');
  return crossEntropy(logits, g.input('position_targets', 'int64', ['batch', 'seq']), IGNORE);
}

/**
 * The place aid's loss: the mean squared distance of decoder `layer`'s output rows, at the rows the graph's input
 * place_rows [batch, seq, 1] marks (1; 0 elsewhere), from place_targets [batch, seq, hidden] — the place vectors a
 * crutch hands those rows, which the decoder is to write into them itself (`egret lab readout --place-aid`).
 */
export function placeAidLoss(hidden: readonly Value[], layer: number): Value {
  const rows = ofLayer(hidden, layer, 'positionLayer');
  const g = rows.graph;
  const width = rows.shape.at(-1) as number;
  const mask = g.input('place_rows', 'float32', ['batch', 'seq', 1]);
  const miss = op.mul(op.sub(rows, g.input('place_targets', 'float32', ['batch', 'seq', width])), mask);
  return op.div(op.reduceSum(op.mul(miss, miss), [0, 1, 2], false), op.mul(op.reduceSum(mask, [0, 1, 2], false), width));
}

/** [batch, seq, width]: each example's place vector k at the row that predicts its code's k-th character, zero elsewhere. */
export function placeRows(examples: readonly Example[], cells: number, seq: number, places: readonly Float32Array[], strength = 1): ort.Tensor {
  const width = places[0]!.length;
  const rows = new Float32Array(examples.length * seq * width);
  examples.forEach((e, b) => {
    for (const { k, row } of answerRows(e, e.before.length + cells, false).code) rows.set(places[k]!.map((x) => x * strength), (b * seq + row) * width);
  });
  return new ort.Tensor('float32', rows, [examples.length, seq, width]);
}

/** [batch, seq, 1]: 1 at the rows that predict a code character, 0 elsewhere (the place aid's rows). */
export function codeRowMask(examples: readonly Example[], cells: number, seq: number): ort.Tensor {
  const mask = new Float32Array(examples.length * seq);
  examples.forEach((e, b) => {
    for (const { row } of answerRows(e, e.before.length + cells, false).code) mask[b * seq + row] = 1;
  });
  return new ort.Tensor('float32', mask, [examples.length, seq, 1]);
}

/** How strongly the place is handed at `step` (a crutch handed until `until`, or throughout when it is undefined): 1, fading to 0 over the second half of `until`. */
export function placeStrength(step: number, until: number | undefined): number {
  if (until === undefined) return 1;
  const half = until / 2;
  return step < half ? 1 : Math.max(0, (until - step) / half);
}
