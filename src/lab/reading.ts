/**
 * The lab's reading head: a linear layer on a vision tower's cells, told for each cell which of the code's
 * characters have their centres there, by their place in the code — dense supervision for training from scratch
 * (docs/LAB.md, "Models trained from scratch"). A 32-px cell of small print holds up to six characters, so one
 * label a cell is not enough: the head has a slot per place in the code (READING_SLOTS), and slot k of a cell says
 * the code's k-th character when its centre lies in the cell and 'no character' otherwise — what the decoder needs
 * to read the code out in order. It trains along and is never saved. Used on the MRA model's visual tokens
 * (train-visual.ts) and on its ConvNeXt alone (pretrain-convnext.ts).
 */
import type { Graph, Value } from '../graph/ir.js';
import { identityLayout, WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import * as op from '../graph/ops/index.js';
import { argmax } from '../generate/sampling.js';
import { linear } from '../models/linear.js';
import { crossEntropy } from '../train/loss.js';
import type { TensorSpec } from '../train/scratch.js';
import { inkCentres } from './font.js';
import type { Box } from './raster.js';
import { CODE_ALPHABET, MAX_CODE_LENGTH, type SmallPrintSample } from './smallprint.js';

export const IGNORE = -100;
export const READING_HEAD = 'lab_reading_head';
/** The head's classes: the code alphabet's characters, then 'no character'. */
export const NO_CHARACTER = CODE_ALPHABET.length;
const CLASSES = NO_CHARACTER + 1;
/** One slot per place in the code. */
export const READING_SLOTS = MAX_CODE_LENGTH;

export function readingHeadSpecs(width: number, name = READING_HEAD): Map<string, TensorSpec> {
  return new Map([
    [`${name}.weight`, { shape: [READING_SLOTS * CLASSES, width], init: { normal: 0.02 } }],
    [`${name}.bias`, { shape: [READING_SLOTS * CLASSES], init: { constant: 0 } }],
  ]);
}

/**
 * The reading head's cross-entropies (its weights in `source` under `name`, as readingHeadSpecs names them) on
 * `cells` [B, cells, width] against the graph's input `targets` [B, cells, READING_SLOTS]: over the character targets
 * and over the 'no character' ones, apart — pooled, the ~200 blanks of an image would drown its ~5 characters (a
 * head that reads none of them would score 0.1). Each is NaN when a batch has no target of its kind. `accuracy` is
 * the share of character targets the head's top class gets right, for the logs.
 */
export function readingHeadLoss(g: Graph, source: TensorSource, cells: Value, name = READING_HEAD, targetsInput = 'reading_targets'):
  { characters: Value; blanks: Value; accuracy: Value } {
  const logits = readingHeadLogits(g, source, cells, name);
  // A dimension name of its own: ORT's planner takes equally named dimensions for equal sizes (two heads' cells are not).
  const targets = g.input(targetsInput, 'int64', ['batch', `${targetsInput}_cells`, READING_SLOTS]);
  const blank = op.equal(targets, NO_CHARACTER);
  const character = op.and(op.greater(targets, -1), op.not(blank));
  const weight = op.cast(character, 'float32');
  const right = op.mul(op.cast(op.equal(op.argMax(logits, -1), targets), 'float32'), weight);
  const all = [0, 1, 2];
  return {
    characters: crossEntropy(logits, op.where(character, targets, IGNORE), IGNORE),
    blanks: crossEntropy(logits, op.where(blank, targets, IGNORE), IGNORE),
    accuracy: op.div(op.reduceSum(right, all, false), op.reduceSum(weight, all, false)),
  };
}

/**
 * The blocked reading head's tensors: slot k reads only the k-th block of width / READING_SLOTS dimensions of a
 * cell, so that what a cell holds of the code's k-th character is written there, apart from its other places — a
 * linear map then reads one place of a cell alone, which the read-out probe needed (`egret lab readout --blocks`;
 * docs/LAB.md, twelfth session).
 */
export function blockedReadingHeadSpecs(width: number, name = READING_HEAD): Map<string, TensorSpec> {
  return new Map([
    [`${name}.weight`, { shape: [READING_SLOTS, Math.floor(width / READING_SLOTS), CLASSES], init: { normal: 0.02 } }],
    [`${name}.bias`, { shape: [READING_SLOTS, CLASSES], init: { constant: 0 } }],
  ]);
}

/**
 * The reading head's logits [B, cells, READING_SLOTS, classes] on `cells` [B, cells, width] (its weights in `source`
 * under `name`): a linear layer (readingHeadSpecs), or one a slot on its block (blockedReadingHeadSpecs, a weight of rank 3).
 */
export function readingHeadLogits(g: Graph, source: TensorSource, cells: Value, name = READING_HEAD): Value {
  const head = new WeightScope(g, source, '', identityLayout).at(name);
  const shape = head.shape('weight');
  if (shape.length === 3) {
    const block = shape[1]!;
    const blocks = op.reshape(op.slice(cells, [2], [0], [READING_SLOTS * block]), [0, 0, READING_SLOTS, 1, block]);
    return op.add(op.reshape(op.matmul(blocks, head.weight('weight')), [0, 0, READING_SLOTS, CLASSES]), head.weight('bias'));
  }
  return op.reshape(linear(head, 'weight', cells, 'fp32', 'bias'), [0, 0, READING_SLOTS, CLASSES]);
}

/** A code character's class and its centre. */
export interface CharacterCentre {
  index: number;
  x: number;
  y: number;
}

/**
 * Where an image's pixels go in LLaVA's expand2square scaled to `side`: image point (x, y) lands at
 * ((ox + x) · scale, (oy + y) · scale).
 */
export function paddedSquare(image: { width: number; height: number }, side: number): { scale: number; ox: number; oy: number } {
  const square = Math.max(image.width, image.height);
  return { scale: side / square, ox: (square - image.width) / 2, oy: (square - image.height) / 2 };
}

/**
 * The code's character centres in the image padded to a square and centred (LLaVA's expand2square), scaled to
 * `side`: placed along the code's ink box by the font's metrics (spaced evenly, a proportional font's centres put
 * 12–14 % of 8-px-cap characters in the wrong 8-px cell; by its metrics, 1–2 %), on its middle line.
 */
export function characterCentres(sample: Pick<SmallPrintSample, 'code' | 'box' | 'width' | 'height'>, side: number): CharacterCentre[] {
  const { scale, ox, oy } = paddedSquare(sample, side);
  const { code, box } = sample;
  const along = inkCentres(code);
  return [...code].map((ch, k) => ({
    index: CODE_ALPHABET.indexOf(ch),
    x: (ox + box.x + along[k]! * box.width) * scale,
    y: (oy + box.y + box.height / 2) * scale,
  }));
}

/** The row-major cell of a `cells` × `cells` window at (x0, y0), cut into cells of `stride`, that holds `centre`; -1 if none. */
function cellOf(centre: CharacterCentre, x0: number, y0: number, stride: number, cells: number): number {
  const [cx, cy] = [Math.floor((centre.x - x0) / stride), Math.floor((centre.y - y0) / stride)];
  return cx < 0 || cy < 0 || cx >= cells || cy >= cells ? -1 : cy * cells + cx;
}

/** The row-major cells of a `cells` × `cells` window at (x0, y0), cut into cells of `stride`, that `box` overlaps. */
function cellsUnder(box: Box, x0: number, y0: number, stride: number, cells: number): number[] {
  const first = (p: number) => Math.max(0, Math.floor(p / stride));
  const last = (p: number) => Math.min(cells - 1, Math.ceil(p / stride) - 1);
  const out: number[] = [];
  for (let cy = first(box.y - y0); cy <= last(box.y + box.height - y0); cy++) {
    for (let cx = first(box.x - x0); cx <= last(box.x + box.width - x0); cx++) out.push(cy * cells + cx);
  }
  return out;
}

/** Targets [cell, slot] of a `cells` × `cells` grid before any character: every slot of one cell in `blankStride` 'no character', the rest ignored. */
function blankCellTargets(cells: number, blankStride: number): Int32Array {
  return new Int32Array(cells * cells * READING_SLOTS).map((_, j) => (Math.floor(j / READING_SLOTS) % blankStride === 0 ? NO_CHARACTER : IGNORE));
}

/**
 * Targets [cell, slot] of the `crop`-pixel window at (x0, y0) cut into cells of `stride` pixels (row-major), for
 * `codes` (each a code's centres, in order): in a cell where a code's character's centre lies, slot k is that
 * code's k-th character if its centre lies there and 'no character' if not; every slot of one cell in `blankStride`
 * without a character says 'no character', and so does every one that a box of `blanks` overlaps (print that is not
 * a code: a distractor word); the rest are ignored. Codes are assumed a cell apart.
 */
export function cellTargets(codes: readonly (readonly CharacterCentre[])[], x0: number, y0: number, crop: number, stride: number, blankStride: number, blanks: readonly Box[] = []): Int32Array {
  const cells = Math.round(crop / stride);
  const targets = blankCellTargets(cells, blankStride);
  for (const cell of blanks.flatMap((box) => cellsUnder(box, x0, y0, stride, cells))) targets.fill(NO_CHARACTER, cell * READING_SLOTS, (cell + 1) * READING_SLOTS);
  for (const centres of codes) {
    const held = centres.map((c) => cellOf(c, x0, y0, stride, cells));
    for (const cell of new Set(held.filter((c) => c >= 0))) {
      for (let k = 0; k < READING_SLOTS; k++) targets[cell * READING_SLOTS + k] = held[k] === cell ? centres[k]!.index : NO_CHARACTER;
    }
  }
  return targets;
}

/**
 * Targets [cell, slot] of the `crop`-pixel window at (x0, y0) cut into cells of `stride` pixels, for cells small
 * enough to hold a character or two: slot j of a cell where characters' centres lie is the j-th of them from the
 * left (of any code), the cell's other slots 'no character'; blank cells as cellTargets, except those a box of
 * `ignored` overlaps (glyphs that are not the code alphabet's, or are but only its capitals would be told: a word's),
 * which are left out. What the glyphs are, not their place in a code: the ConvNeXt's early stages learn to tell them
 * apart from it (pretrain-convnext.ts).
 */
export function glyphTargets(codes: readonly (readonly CharacterCentre[])[], x0: number, y0: number, crop: number, stride: number, blankStride: number, ignored: readonly Box[] = []): Int32Array {
  const cells = Math.round(crop / stride);
  const targets = blankCellTargets(cells, blankStride);
  for (const cell of ignored.flatMap((box) => cellsUnder(box, x0, y0, stride, cells))) targets.fill(IGNORE, cell * READING_SLOTS, (cell + 1) * READING_SLOTS);
  const held = new Map<number, CharacterCentre[]>();
  for (const centre of codes.flat()) {
    const cell = cellOf(centre, x0, y0, stride, cells);
    if (cell >= 0) held.set(cell, [...(held.get(cell) ?? []), centre]);
  }
  for (const [cell, centres] of held) {
    centres.sort((a, b) => a.x - b.x);
    for (let j = 0; j < READING_SLOTS; j++) targets[cell * READING_SLOTS + j] = centres[j]?.index ?? NO_CHARACTER;
  }
  return targets;
}

/** One cell in this many without a character is a 'no character' target on the whole grid, unless told otherwise. */
const GRID_BLANK_STRIDE = 16;

/**
 * Targets [cell, slot] for each cell of a `grid` × `grid` visual-token grid over the padded square (cellTargets' rule,
 * one cell without a character in `blankStride` told 'no character').
 */
export function readingTargets(sample: Pick<SmallPrintSample, 'code' | 'box' | 'width' | 'height'>, grid: number, blankStride = GRID_BLANK_STRIDE): Int32Array {
  return cellTargets([characterCentres(sample, grid)], 0, 0, grid, 1, blankStride);
}

/** The cell of a `grid` × `grid` visual-token grid over the padded square that holds each code character's centre (-1: none). */
export function characterCells(sample: Pick<SmallPrintSample, 'code' | 'box' | 'width' | 'height'>, grid: number): number[] {
  return characterCentres(sample, grid).map((c) => cellOf(c, 0, 0, 1, grid));
}

/**
 * Which of a code's characters a reading head reads in place: slot k of the cell holding the k-th character's
 * centre (`cells[k]`, -1 when outside the grid) has that character as its top class. `logits` is the head's
 * output for one image, [cells, READING_SLOTS, classes] (probabilities do as well).
 */
export function readInPlace(logits: Float32Array, cells: readonly number[], code: string): boolean[] {
  return [...code].map((ch, k) => {
    const cell = cells[k]!;
    if (cell < 0) return false;
    const at = (cell * READING_SLOTS + k) * CLASSES;
    return argmax(logits.subarray(at, at + CLASSES)) === CODE_ALPHABET.indexOf(ch);
  });
}

/** The cells (of `cells`) in which a reading head's top class is a character in at least one slot; `logits` as readInPlace's. */
export function cellsReadAsCharacters(logits: Float32Array, cells: number): number[] {
  const out: number[] = [];
  for (let cell = 0; cell < cells; cell++) {
    for (let k = 0; k < READING_SLOTS; k++) {
      const at = (cell * READING_SLOTS + k) * CLASSES;
      if (argmax(logits.subarray(at, at + CLASSES)) !== NO_CHARACTER) {
        out.push(cell);
        break;
      }
    }
  }
  return out;
}
