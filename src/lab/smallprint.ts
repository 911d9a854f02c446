/**
 * Task 1, "small print": a code of 4-6 characters (A-Z, 0-9) printed in DejaVu Sans at a cap height of 8-16 px,
 * dark on light, somewhere on a 768-1024 px image among shapes, lines and short words in the same font. The
 * question asks for the code; the answer is the code.
 *
 * The code is legible at full size and not once the image is shrunk so its shorter side is 224 px (LLaVA-1.5's
 * low-resolution input): its cap height there stays under 3 px. The rendering varies what a model should not rely
 * on (colours, size, place, a slight rotation, supersampling and resampling kernel, stroke weight, blur, noise,
 * JPEG artefacts), so that codes printed by another program with the same font read alike.
 */
import type { RGB, RGBImage } from '../vision/image.js';
import { emForCapHeight, renderText, type Mask } from './font.js';
import { sampleRng, type Rng } from './random.js';
import {
  addNoise, blendMask, blur, boxesOverlap, encodePng, gammaMask, gradientCanvas, growBox, hsl, inkBox, jpegRoundTrip, luma, svgColour,
  transformMask, drawSvg, type Box, type Kernel,
} from './raster.js';

export const SMALL_PRINT_TASK = 'smallprint';
export const CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const MIN_CODE_LENGTH = 4;
export const MAX_CODE_LENGTH = 6;
export const MIN_SIDE = 768;
export const MAX_SIDE = 1024;
export const MIN_CAP_HEIGHT = 8;
export const MAX_CAP_HEIGHT = 16;
/** The low resolution at which the code must be unreadable, and the cap height it may have there at most. */
export const LOW_RES_SIDE = 224;
export const MAX_LOW_RES_CAP_HEIGHT = 2.9;
export const MAX_ANGLE = 3;
/**
 * At ease 1 the code is printed this much larger again (40–66 px caps): big enough that a model from scratch
 * finds it among hundreds of visual tokens and the low-resolution view reads it too, which breaks the plateau at the
 * character prior that training on the task as specified sits on for thousands of samples.
 */
const EASE_GROWTH = 4;

/** The question, most often the README's "What is the code?". */
export const SMALL_PRINT_QUESTIONS = ['What is the code?', 'What is the code?', 'What code is printed in the image?', 'Read the code in the image.'];

/** Distractor words: each has a lower-case letter or punctuation, so none reads as a code. */
const WORDS = [
  'ticket', 'Ticket', 'gate', 'Gate 12', 'seat', 'Seat 4a', 'row', 'Row 7', 'valid', 'Valid until', 'date', 'total', 'Total', 'price',
  '$4.50', '12:45', '09:10', 'No. 31', 'zone', 'Zone B', 'platform', 'departure', 'Arrival', 'from', 'to', 'passenger', 'class',
  'economy', 'Thank you', 'keep this', 'page 2', 'lot', 'batch', 'ref.', 'item', 'Item 3', 'qty', 'serial', 'model', 'size M',
  'exp.', 'best before', 'net wt.', 'made in', 'store', 'open', 'exit', 'entry', 'print', 'hello', 'notice', 'x 2', 'box', 'fragile',
];

const KERNELS: Kernel[] = ['linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'];

export interface SmallPrintText {
  code: string;
  question: string;
}

export interface SmallPrintSample extends SmallPrintText {
  index: number;
  width: number;
  height: number;
  /** The code's cap height in pixels. */
  capHeight: number;
  /** The code's rotation in degrees, clockwise. */
  angle: number;
  /** The box of the code's ink (pixels covered at least half) in the image. */
  box: Box;
  /** The code's colour. */
  ink: RGB;
  /** The boxes of the distractor words' ink in the image. */
  words: Box[];
  png: Uint8Array;
}

/** The code and question: the first draws of the sample's stream, so the text is known without rendering. */
function drawText(rng: Rng): SmallPrintText {
  const length = rng.int(MIN_CODE_LENGTH, MAX_CODE_LENGTH);
  const code = Array.from({ length }, () => rng.pick([...CODE_ALPHABET])).join('');
  return { code, question: rng.pick(SMALL_PRINT_QUESTIONS) };
}

/** Sample `index`'s code and question in the dataset of `seed`. */
export function smallPrintText(seed: number, index: number): SmallPrintText {
  return drawText(sampleRng(seed, SMALL_PRINT_TASK, index));
}

/** The largest cap height for an image whose shorter side is `minSide`: 16 px, and under 3 px at 224. */
export function maxCapHeight(minSide: number): number {
  return Math.min(MAX_CAP_HEIGHT, (MAX_LOW_RES_CAP_HEIGHT * minSide) / LOW_RES_SIDE);
}

/**
 * Renders sample `index` of the dataset of `seed`. `ease` in [0, 1] (training curricula only; 0, the task as
 * specified, by default) raises the smallest cap height towards the largest and thins the distractors out
 * proportionally; the sample's random draws are the same whatever the ease.
 */
export async function renderSmallPrint(seed: number, index: number, ease = 0): Promise<SmallPrintSample> {
  const rng = sampleRng(seed, SMALL_PRINT_TASK, index);
  const text = drawText(rng);
  const width = rng.int(MIN_SIDE, MAX_SIDE);
  const height = rng.int(MIN_SIDE, MAX_SIDE);
  const largest = maxCapHeight(Math.min(width, height));
  const capHeight = rng.uniform(MIN_CAP_HEIGHT, largest) * (1 + EASE_GROWTH * ease);
  const angle = rng.chance(0.3) ? 0 : rng.uniform(-MAX_ANGLE, MAX_ANGLE);
  const { paper, ink } = drawColours(rng);
  const img = gradientCanvas(width, height, paper, jitter(paper, rng, 12));

  const mask = await printMask(text.code, capHeight, angle, rng);
  const margin = Math.ceil(2 * capHeight);
  const x = rng.int(margin, width - mask.width - margin);
  const y = rng.int(margin, height - mask.height - margin);
  const ink0 = inkBox(mask)!;
  const box = { x: x + ink0.x, y: y + ink0.y, width: ink0.width, height: ink0.height };
  const taken = [growBox(box, Math.ceil(1.5 * capHeight))];

  await drawSvg(img, drawShapes(rng, width, height, taken, 1 - ease));
  const words = await drawWords(img, rng, ink, taken, 1 - ease);
  blendMask(img, mask, x, y, ink);

  let out: RGBImage = img;
  if (rng.chance(0.25)) out = await blur(out, rng.uniform(0.3, 0.6));
  if (rng.chance(0.4)) addNoise(out, rng.uniform(1, 4), rng);
  if (rng.chance(0.3)) out = await jpegRoundTrip(out, rng.int(70, 95));
  return { index, ...text, width, height, capHeight, angle, box, ink, words, png: await encodePng(out) };
}

/** Light paper and a dark ink, at least 130 apart in luma. */
function drawColours(rng: Rng): { paper: RGB; ink: RGB } {
  for (;;) {
    const paper = hsl(rng.uniform(0, 360), rng.uniform(0, 0.6), rng.uniform(0.82, 0.98));
    const ink = hsl(rng.uniform(0, 360), rng.uniform(0, 0.8), rng.uniform(0.02, 0.3));
    if (luma(paper) - luma(ink) >= 130) return { paper, ink };
  }
}

function jitter(colour: RGB, rng: Rng, amount: number): RGB {
  return colour.map((c) => Math.max(0, Math.min(255, Math.round(c + rng.uniform(-amount, amount))))) as unknown as RGB;
}

/**
 * Text as one renderer or another might print it: drawn at 1-4 times the size and shrunk with one of several
 * kernels at a random sub-pixel phase, strokes made a little thinner or bolder, slightly rotated.
 */
async function printMask(text: string, capHeight: number, angle: number, rng: Rng): Promise<Mask> {
  const shrink = rng.pick([1, 1, 2, 3, 4]);
  const kernel = rng.pick(KERNELS);
  const offset: [number, number] = [rng.int(0, shrink - 1), rng.int(0, shrink - 1)];
  const gamma = rng.uniform(0.75, 1.35);
  const mask = await transformMask(await renderText(text, emForCapHeight(capHeight) * shrink), angle, shrink, kernel, offset);
  return gammaMask(mask, gamma);
}

/** Places a box of `width` x `height` clear of `taken` (trying a few times); undefined when none was found. */
function place(rng: Rng, canvas: [number, number], width: number, height: number, taken: Box[]): Box | undefined {
  for (let attempt = 0; attempt < 20; attempt++) {
    const box = { x: rng.int(0, Math.max(0, canvas[0] - width)), y: rng.int(0, Math.max(0, canvas[1] - height)), width, height };
    if (!taken.some((t) => boxesOverlap(t, box))) return box;
  }
  return undefined;
}

/** Filled shapes and line segments (`share` of the drawn counts), none within `taken`. */
function drawShapes(rng: Rng, width: number, height: number, taken: Box[], share: number): string {
  const parts: string[] = [];
  const colour = () => svgColour(hsl(rng.uniform(0, 360), rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.85)));
  for (let i = Math.round(rng.int(3, 12) * share); i > 0; i--) {
    const size = rng.int(20, 240);
    const box = place(rng, [width, height], size, Math.round(size * rng.uniform(0.5, 1.5)), taken);
    if (!box) continue;
    const fill = `fill="${colour()}" fill-opacity="${rng.uniform(0.25, 1).toFixed(3)}"`;
    const stroke = rng.chance(0.4) ? ` stroke="${colour()}" stroke-width="${rng.int(1, 4)}"` : '';
    const { x, y, width: w, height: h } = box;
    switch (rng.pick(['rect', 'ellipse', 'triangle'])) {
      case 'rect':
        parts.push(`<rect x="${x + 2}" y="${y + 2}" width="${w - 4}" height="${h - 4}" rx="${rng.int(0, 12)}" ${fill}${stroke}/>`);
        break;
      case 'ellipse':
        parts.push(`<ellipse cx="${x + w / 2}" cy="${y + h / 2}" rx="${w / 2 - 2}" ry="${h / 2 - 2}" ${fill}${stroke}/>`);
        break;
      default:
        parts.push(`<polygon points="${x + w / 2},${y + 2} ${x + w - 2},${y + h - 2} ${x + 2},${y + h - 2}" ${fill}${stroke}/>`);
    }
  }
  for (let i = Math.round(rng.int(2, 8) * share); i > 0; i--) {
    const length = rng.uniform(40, 400);
    const theta = rng.uniform(0, Math.PI);
    const dx = Math.round(length * Math.cos(theta));
    const dy = Math.round(length * Math.sin(theta));
    const box = place(rng, [width, height], Math.abs(dx) + 8, dy + 8, taken);
    if (!box) continue;
    const [x1, x2] = dx >= 0 ? [box.x + 4, box.x + 4 + dx] : [box.x + 4 - dx, box.x + 4];
    parts.push(`<line x1="${x1}" y1="${box.y + 4}" x2="${x2}" y2="${box.y + 4 + dy}" stroke="${colour()}" stroke-width="${rng.int(1, 4)}"/>`);
  }
  return parts.join('');
}

/**
 * Short words in the same font (`share` of the drawn count), smaller and larger than the code, some in the code's
 * ink; none overlapping. Returns the boxes of their ink.
 */
async function drawWords(img: RGBImage, rng: Rng, ink: RGB, taken: Box[], share: number): Promise<Box[]> {
  const boxes: Box[] = [];
  for (let i = Math.round(rng.int(4, 14) * share); i > 0; i--) {
    const box = await drawWord(img, rng, ink, taken, [MIN_CAP_HEIGHT, MAX_CAP_HEIGHT], 4);
    if (box) boxes.push(box);
  }
  return boxes;
}

/**
 * One distractor word, at the code's cap heights (`codeSizes`) half the time, in the code's `ink` half the time,
 * kept `margin` pixels from what is placed after it. Returns the box of its ink, undefined when it found no place.
 */
async function drawWord(img: RGBImage, rng: Rng, ink: RGB, taken: Box[], codeSizes: readonly [number, number], margin: number): Promise<Box | undefined> {
  const word = rng.pick(WORDS);
  const capHeight = rng.chance(0.5) ? rng.uniform(codeSizes[0], codeSizes[1]) : rng.uniform(6, 40);
  const colour = rng.chance(0.5) ? ink : hsl(rng.uniform(0, 360), rng.uniform(0, 0.9), rng.uniform(0.05, 0.5));
  const mask = await printMask(word, capHeight, rng.uniform(-MAX_ANGLE, MAX_ANGLE), rng);
  const box = place(rng, [img.width, img.height], mask.width, mask.height, taken);
  if (!box) return undefined;
  blendMask(img, mask, box.x, box.y, colour);
  taken.push(growBox(box, margin));
  const ink0 = inkBox(mask);
  return ink0 && { x: box.x + ink0.x, y: box.y + ink0.y, width: ink0.width, height: ink0.height };
}

/** A code printed on a sheet, and the box of its ink. */
export interface PrintedCode {
  code: string;
  box: Box;
  ink: RGB;
}

export interface CodeSheet {
  index: number;
  side: number;
  codes: PrintedCode[];
  /** The boxes of the distractor words' ink: print that is not a code. */
  words: Box[];
  png: Uint8Array;
}

/** A code's ink on `paper`: drawn until it is at least 130 darker in luma. */
function codeInk(rng: Rng, paper: RGB): RGB {
  let colour = drawColours(rng).ink;
  while (luma(paper) - luma(colour) < 130) colour = drawColours(rng).ink;
  return colour;
}

export const CODE_SHEET_TASK = 'codesheet';
/**
 * Sheet `index` of `seed`: a `side`-pixel square printed with up to `count` codes, each as the task prints its code
 * (random colours, tilt, supersampling, stroke weight) at the cap heights the task's code has once its image is
 * resized to `side` (6–9.9 px at 768, 8–13.3 px at 1024), none within `gap` pixels of another, among a few shapes and words
 * (and `words` more drawn among the codes, as far from them, half of them at their sizes and in a code's ink); then the
 * task's blur, noise and JPEG. For teaching a vision tower to read (stage 0, pretrain-convnext.ts): a sheet gives
 * a hundred and more labelled characters where a task image gives five. `ease` enlarges the print as
 * renderSmallPrint's does; `smallCaps` (0 < smallCaps ≤ 1) keeps the codes' and words' cap heights to that share of
 * the range from its smallest end.
 */
export async function renderCodeSheet(seed: number, index: number, side: number, gap: number, ease: number, count: number, words = 0, smallCaps = 1): Promise<CodeSheet> {
  if (!(smallCaps > 0 && smallCaps <= 1)) throw new Error(`code sheet: smallCaps must be in (0, 1], not ${smallCaps}`);
  const rng = sampleRng(seed, CODE_SHEET_TASK, index);
  const { paper } = drawColours(rng);
  const img = gradientCanvas(side, side, paper, jitter(paper, rng, 12));
  // The task's code, its image resized to `side`: from 8 px on the largest image to maxCapHeight's bound, which
  // scales with the image's side and so is the same at any side once resized.
  const [smallest, full] = [(MIN_CAP_HEIGHT * side) / MAX_SIDE, (MAX_LOW_RES_CAP_HEIGHT * side) / LOW_RES_SIDE];
  const largest = smallCaps === 1 ? full : smallest + smallCaps * (full - smallest);
  const taken: Box[] = [];
  const codes: PrintedCode[] = [];
  const wordBoxes: Box[] = [];
  for (let codesLeft = count, wordsLeft = words; codesLeft > 0 || wordsLeft > 0;) {
    // Words drawn among the codes, in the same font, sizes and inks: a task image has 4–14 of them to its one code.
    if (wordsLeft > 0 && (codesLeft === 0 || rng.chance(wordsLeft / (wordsLeft + codesLeft)))) {
      wordsLeft--;
      const box = await drawWord(img, rng, codeInk(rng, paper), taken, [smallest, largest], gap);
      if (box) wordBoxes.push(box);
      continue;
    }
    codesLeft--;
    const { code } = drawText(rng);
    const capHeight = rng.uniform(smallest, largest) * (1 + EASE_GROWTH * ease);
    const mask = await printMask(code, capHeight, rng.chance(0.3) ? 0 : rng.uniform(-MAX_ANGLE, MAX_ANGLE), rng);
    const ink = inkBox(mask);
    const at = place(rng, [side, side], mask.width, mask.height, taken);
    if (!ink || !at) continue;
    const colour = codeInk(rng, paper);
    blendMask(img, mask, at.x, at.y, colour);
    const box = { x: at.x + ink.x, y: at.y + ink.y, width: ink.width, height: ink.height };
    codes.push({ code, box, ink: colour });
    taken.push(growBox(box, gap));
  }
  await drawSvg(img, drawShapes(rng, side, side, taken, 0.5));
  wordBoxes.push(...await drawWords(img, rng, drawColours(rng).ink, taken, 0.5));
  let out: RGBImage = img;
  if (rng.chance(0.25)) out = await blur(out, rng.uniform(0.3, 0.6));
  if (rng.chance(0.4)) addNoise(out, rng.uniform(1, 4), rng);
  if (rng.chance(0.3)) out = await jpegRoundTrip(out, rng.int(70, 95));
  return { index, side, codes, words: wordBoxes, png: await encodePng(out) };
}
