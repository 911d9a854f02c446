/**
 * The lab's reading head: a linear layer on a vision tower's cells, told which code character's centre lies in each
 * cell — dense supervision for training from scratch (docs/LAB.md, "Models trained from scratch"). It trains along
 * and is never saved. Used on the MRA model's visual tokens (train-visual.ts) and on its ConvNeXt alone
 * (pretrain-convnext.ts).
 */
import type { Graph, Value } from '../graph/ir.js';
import { identityLayout, WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { linear } from '../models/linear.js';
import { crossEntropy } from '../train/loss.js';
import type { TensorSpec } from '../train/scratch.js';
import { CODE_ALPHABET, type SmallPrintSample } from './smallprint.js';

export const IGNORE = -100;
export const READING_HEAD = 'lab_reading_head';
/** The head's classes: the code alphabet's characters, then 'no character'. */
export const NO_CHARACTER = CODE_ALPHABET.length;

export function readingHeadSpecs(width: number): Map<string, TensorSpec> {
  return new Map([
    [`${READING_HEAD}.weight`, { shape: [NO_CHARACTER + 1, width], init: { normal: 0.02 } }],
    [`${READING_HEAD}.bias`, { shape: [NO_CHARACTER + 1], init: { constant: 0 } }],
  ]);
}

/**
 * Cross-entropy of the reading head (its weights in `source`, named as readingHeadSpecs names them) on `cells`
 * [B, cells, width] against the graph's input reading_targets [B, cells].
 */
export function readingHeadLoss(g: Graph, source: TensorSource, cells: Value): Value {
  const head = new WeightScope(g, source, '', identityLayout).at(READING_HEAD);
  const logits = linear(head, 'weight', cells, 'fp32', 'bias');
  return crossEntropy(logits, g.input('reading_targets', 'int64', ['batch', 'cells']), IGNORE);
}

/** A code character's class and its centre. */
export interface CharacterCentre {
  index: number;
  x: number;
  y: number;
}

/**
 * The code's character centres in the image padded to a square and centred (LLaVA's expand2square), scaled to
 * `side`: spaced evenly along the code's ink box, on its middle line.
 */
export function characterCentres(sample: Pick<SmallPrintSample, 'code' | 'box' | 'width' | 'height'>, side: number): CharacterCentre[] {
  const square = Math.max(sample.width, sample.height);
  const scale = side / square;
  const [ox, oy] = [(square - sample.width) / 2, (square - sample.height) / 2];
  const { code, box } = sample;
  return [...code].map((ch, k) => ({
    index: CODE_ALPHABET.indexOf(ch),
    x: (ox + box.x + ((k + 0.5) / code.length) * box.width) * scale,
    y: (oy + box.y + box.height / 2) * scale,
  }));
}

/**
 * Targets of the `crop`-pixel window at (x0, y0) cut into cells of `stride` pixels (row-major): the character whose
 * centre lies in a cell (of two, the one nearer the cell's centre), 'no character' on one cell in `blankStride`
 * that has none, else ignored.
 */
export function cellTargets(centres: readonly CharacterCentre[], x0: number, y0: number, crop: number, stride: number, blankStride: number): Int32Array {
  const cells = Math.round(crop / stride);
  const targets = new Int32Array(cells * cells).map((_, j) => (j % blankStride === 0 ? NO_CHARACTER : IGNORE));
  const distance = new Float64Array(cells * cells).fill(Infinity);
  for (const c of centres) {
    const [cx, cy] = [Math.floor((c.x - x0) / stride), Math.floor((c.y - y0) / stride)];
    if (cx < 0 || cy < 0 || cx >= cells || cy >= cells) continue;
    const d = Math.hypot(c.x - x0 - (cx + 0.5) * stride, c.y - y0 - (cy + 0.5) * stride);
    if (d < distance[cy * cells + cx]!) {
      distance[cy * cells + cx] = d;
      targets[cy * cells + cx] = c.index;
    }
  }
  return targets;
}

/** One cell in this many without a character is a 'no character' target on the whole grid, so that the characters weigh. */
const GRID_BLANK_STRIDE = 16;

/** Targets for each cell of a `grid` × `grid` visual-token grid over the padded square (cellTargets' rule). */
export function readingTargets(sample: Pick<SmallPrintSample, 'code' | 'box' | 'width' | 'height'>, grid: number): Int32Array {
  return cellTargets(characterCentres(sample, grid), 0, 0, grid, 1, GRID_BLANK_STRIDE);
}
