/**
 * The fixed random vectors the read-out's synthetic tokens are made of (`egret lab readout`, readout-probe.ts) and
 * that lab training hands the decoder as a place crutch (train-visual.ts), and that stage 1 can tell the visual
 * tokens to be (pretrain-tokens.ts).
 */
import { Rng } from './random.js';
import { CODE_ALPHABET, MAX_CODE_LENGTH } from './smallprint.js';

/** The fixed place vectors a crutch hands (placeRows): one for each place in a code, std 0.05, drawn from `rng`. */
export function placeVectors(width: number, rng: Rng): Float32Array[] {
  return Array.from({ length: MAX_CODE_LENGTH }, () => Float32Array.from({ length: width }, () => rng.normal() * 0.05));
}

/** Standard deviation of the synthetic vectors by default, about a fresh projector's output. */
export const VECTOR_STD = 0.05;

/** How the probe's vectors are drawn (readoutVectors). */
export interface VectorSettings {
  /** Their standard deviation (default VECTOR_STD). */
  std?: number;
  /**
   * Each place k of the code gets its own block of the width (width / MAX_CODE_LENGTH dimensions, scaled by √MAX_CODE_LENGTH to about the same
   * norm), so that a cell's characters lie apart and a linear map reads place k alone; otherwise every (place,
   * character) vector spans the whole width.
   */
  blocks?: boolean;
  /**
   * Key each character's vector by the character before it (the code's start for the first) instead of its place:
   * the row that predicts a character has the one before it as its input token, so it needs no place to ask for
   * the next (an induction-like read-out; ambiguous where a character repeats).
   */
  previous?: boolean;
}

/** The fixed vectors a probe's tokens are made of. */
export interface ReadoutVectors {
  /** [slot][character] → vector. */
  slots: Float32Array[][];
  marker: Float32Array;
  blank: Float32Array;
  /** [place] → the vector givePlace adds at a row that predicts that place's character. */
  places: Float32Array[];
  /** With `previous`: [the character before (CODE_ALPHABET's index, or its length for the start)][character] → vector, used instead of `slots`. */
  follows?: Float32Array[][];
}

export function readoutVectors(width: number, seed: number, settings: VectorSettings = {}): ReadoutVectors {
  const rng = new Rng(seed);
  const std = settings.std ?? VECTOR_STD;
  const vector = () => Float32Array.from({ length: width }, () => rng.normal() * std);
  const block = Math.floor(width / MAX_CODE_LENGTH);
  // Drawn whole and then cut to the block, so that the marker and blank are the same vectors either way.
  const slotVector = (k: number) => {
    const v = vector();
    return settings.blocks ? v.map((x, d) => (d >= k * block && d < (k + 1) * block ? x * Math.sqrt(MAX_CODE_LENGTH) : 0)) : v;
  };
  return {
    slots: Array.from({ length: MAX_CODE_LENGTH }, (_, k) => Array.from({ length: CODE_ALPHABET.length }, () => slotVector(k))),
    marker: vector(),
    blank: vector(),
    places: placeVectors(width, rng),
    ...(settings.previous ? { follows: Array.from({ length: CODE_ALPHABET.length + 1 }, () => Array.from({ length: CODE_ALPHABET.length }, vector)) } : {}),
  };
}

