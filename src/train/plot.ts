// Charts as PNG: a training run's curves (`egret train lavin` writes loss.png with it as the run goes) and bars
// (the lab's tables).
// Drawn into an RGB buffer here and encoded by sharp; text uses the bitmap font below, so no system font is needed.
import { rename, rm, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { InputError } from '../errors.js';

export interface Curve {
  label: string;
  values: readonly number[];
  color: [number, number, number];
}

type RGB = readonly [number, number, number];

/**
 * 5x7 capitals, digits and punctuation (lower case is drawn as capitals): each entry is the character, then its 35
 * pixels as 9 hex digits, row by row from the top, the leftmost pixel of a row the most significant bit.
 */
const FONT = new Map(
  `03a33ae62e 111842108e 23a211111f 378217043e 408ca97c42 57e1e0862e 61910f462e 77c2222108 83a317462e 93a317844c
  .00000018c ,000003088 -0000f8000 +0084f9080 :018c03180 /002222200 (088842082 )208210888 %632222263 =001f07c00
  _00000001f ?3a2111004 A3a31fc631 B7a31f463e C3a308422e D7a318c63e E7e10f421f F7e10f4210 G3a30bc62f H4631fc631
  I38842108e J1c4210a4c K4654c5251 L42108421f M4775ac631 N4639ace31 O3a318c62e P7a31f4210 Q3a318d64d R7a31f5251
  S3e107043e T7c8421084 U46318c62e V46318c544 W4631ad6aa X462a22a31 Y462a21084 Z7c222221f`
    .split(/\s+/)
    .map((entry) => [entry[0]!, parseInt(entry.slice(1), 16)] as const),
);
const ADVANCE = 6; // glyph width + 1 column of space, at scale 1
const INK: RGB = [40, 40, 40];
const GRID: RGB = [228, 228, 228];

class Canvas {
  readonly pixels: Buffer;
  constructor(readonly width: number, readonly height: number) {
    this.pixels = Buffer.alloc(width * height * 3, 255);
  }

  fill(x0: number, y0: number, w: number, h: number, color: RGB): void {
    for (let y = Math.max(0, y0); y < Math.min(this.height, y0 + h); y++) {
      for (let x = Math.max(0, x0); x < Math.min(this.width, x0 + w); x++) this.pixels.set(color, (y * this.width + x) * 3);
    }
  }

  /** `text` with its left edge at x (or its right edge, for align 'right') and its top at y. */
  text(text: string, x: number, y: number, color: RGB, scale = 1, align: 'left' | 'right' | 'center' = 'left'): void {
    const width = text.length * ADVANCE * scale;
    let left = align === 'left' ? x : align === 'right' ? x - width : x - Math.round(width / 2);
    for (const ch of text.toUpperCase()) {
      const bits = ch === ' ' ? 0 : (FONT.get(ch) ?? FONT.get('?')!);
      for (let i = 0; i < 35; i++) {
        if (Math.floor(bits / 2 ** (34 - i)) % 2) this.fill(left + (i % 5) * scale, y + Math.floor(i / 5) * scale, scale, scale, color);
      }
      left += ADVANCE * scale;
    }
  }

  /** A 2-pixel-wide line (Bresenham), clipped to the box [bx, bx+bw) x [by, by+bh). */
  line(x0: number, y0: number, x1: number, y1: number, color: RGB, box: readonly [number, number, number, number]): void {
    const [bx, by, bw, bh] = box;
    const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    for (let err = dx + dy; ; ) {
      for (const [px, py] of [[x0, y0], [x0 + 1, y0], [x0, y0 + 1], [x0 + 1, y0 + 1]] as const) {
        if (px >= bx && px < bx + bw && py >= by && py < by + bh) this.pixels.set(color, (py * this.width + px) * 3);
      }
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) [err, x0] = [err + dy, x0 + sx];
      if (e2 <= dx) [err, y0] = [err + dx, y0 + sy];
    }
  }
}

/** Round ticks (1, 2 or 5 times a power of ten apart, at least `minStep`, about `count` of them) from at or below lo to at or above hi. */
function niceTicks(lo: number, hi: number, count: number, minStep = 0): { step: number; ticks: number[] } {
  const raw = Math.max((hi - lo) / count, minStep);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9))!;
  const ticks: number[] = [];
  for (let k = Math.floor(lo / step + 1e-9); k <= Math.ceil(hi / step - 1e-9); k++) ticks.push(k * step);
  return { step, ticks };
}

/** A tick label with just enough digits to tell ticks `step` apart; exponent form when very large or small. */
function tickLabel(value: number, step: number, largest: number): string {
  if (Math.abs(value) < step * 1e-9) return '0';
  if (largest >= 1e5 || largest < 1e-2) return value.toExponential(Math.max(0, Math.floor(Math.log10(largest)) - Math.floor(Math.log10(step)))).replace('e+', 'e');
  return value.toFixed(Math.max(0, -Math.floor(Math.log10(step))));
}

/** The finite range of `values`, widened when flat (or empty) so that a constant curve sits mid-height. */
function valueRange(values: readonly number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  if (lo > hi) return [0, 1];
  // hi - lo must stay finite for the scale (NaN pixel rows would never end a line); values beyond are clipped.
  if (!Number.isFinite(hi - lo)) [lo, hi] = [Math.max(lo, -Number.MAX_VALUE / 4), Math.min(hi, Number.MAX_VALUE / 4)];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 2;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

let writes = 0; // distinct temporary names when one process writes the same chart twice at once

/** A line chart of `curves` over x = 1..n (steps), each curve scaled to its own axis (loss left, lr right), written atomically as PNG. */
export async function writeCurvesPng(path: string, title: string, curves: readonly Curve[], opts: { width?: number; height?: number } = {}): Promise<void> {
  const { width = 800, height = 480 } = opts;
  if (curves.length < 1 || curves.length > 2) throw new RangeError(`a chart has one or two curves (left and right axis), got ${curves.length}`);
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 240 && height >= 160)) throw new RangeError(`chart size ${width}x${height} is below 240x160`);
  const canvas = new Canvas(width, height);
  const margin = 12 * ADVANCE; // room for 10-character tick labels beside each vertical axis
  const plot = [margin, 40, width - 2 * margin, height - 40 - 34] as const; // x, y, w, h: title and legend above, step ticks below
  const [px, py, pw, ph] = plot;

  canvas.text(title, px, 10, INK, 2);
  let legendRight = px + pw;
  for (const curve of [...curves].reverse()) {
    canvas.text(curve.label, legendRight, 16, INK, 1, 'right');
    legendRight -= curve.label.length * ADVANCE + 4;
    canvas.fill(legendRight - 16, 18, 16, 3, curve.color);
    legendRight -= 16 + 2 * ADVANCE;
  }

  // x: steps 1..n, or a single step in the middle.
  const n = Math.max(...curves.map((c) => c.values.length));
  const [x0, x1] = n >= 2 ? [1, n] : [0, 2];
  const column = (step: number): number => px + Math.round(((step - x0) / (x1 - x0)) * (pw - 1));
  for (const tick of niceTicks(x0, x1, 8, 1).ticks.filter((t) => t >= 1 && t <= n)) {
    canvas.fill(column(tick), py, 1, ph, GRID);
    canvas.fill(column(tick), py + ph, 1, 4, INK);
    canvas.text(String(tick), column(tick), py + ph + 7, INK, 1, 'center');
  }
  canvas.text('step', px + pw / 2, py + ph + 22, INK, 1, 'center');

  curves.forEach((curve, side) => {
    const [lo, hi] = valueRange(curve.values);
    const { step, ticks } = niceTicks(lo, hi, 5);
    const [y0, y1] = [ticks[0]!, ticks[ticks.length - 1]!];
    const row = (v: number): number => py + Math.round((1 - (v - y0) / (y1 - y0)) * (ph - 1));
    const largest = Math.max(Math.abs(y0), Math.abs(y1));
    for (const tick of ticks) {
      if (side === 0) canvas.fill(px, row(tick), pw, 1, GRID);
      canvas.fill(side === 0 ? px - 4 : px + pw, row(tick), 4, 1, INK);
      canvas.text(tickLabel(tick, step, largest), side === 0 ? px - 7 : px + pw + 7, row(tick) - 3, curve.color, 1, side === 0 ? 'right' : 'left');
    }
    drawCurve(canvas, curve, column, row, plot);
  });
  canvas.fill(px - 1, py - 1, pw + 2, 1, INK);
  canvas.fill(px - 1, py + ph, pw + 2, 1, INK);
  canvas.fill(px - 1, py - 1, 1, ph + 2, INK);
  canvas.fill(px + pw, py - 1, 1, ph + 2, INK);

  await writePng(path, canvas);
}

export interface Bar {
  label: string;
  value: number;
  color: [number, number, number];
  /** Shown after the bar (default: the value with 3 significant digits). */
  text?: string;
}

/** Horizontal bars, one per row with its label on the left, on a scale from 0 to `max` (default the largest), as PNG. */
export async function writeBarsPng(path: string, title: string, bars: readonly Bar[], opts: { max?: number; width?: number } = {}): Promise<void> {
  const { width = 800 } = opts;
  const row = 26;
  const height = 50 + bars.length * row + 10;
  const canvas = new Canvas(width, height);
  canvas.text(title, 12, 10, INK, 2);
  const labelWidth = Math.max(...bars.map((b) => b.label.length), 4) * ADVANCE + 24;
  const valueWidth = 14 * ADVANCE;
  const span = width - labelWidth - valueWidth;
  const max = opts.max ?? Math.max(...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), 1e-30);
  bars.forEach((bar, i) => {
    const y = 50 + i * row;
    canvas.text(bar.label, labelWidth - 12, y + 6, INK, 1, 'right');
    const length = Number.isFinite(bar.value) ? Math.round((Math.min(Math.max(bar.value, 0), max) / max) * span) : 0;
    canvas.fill(labelWidth, y, Math.max(length, 1), row - 8, bar.color);
    canvas.text(bar.text ?? (Number.isFinite(bar.value) ? bar.value.toPrecision(3) : 'n/a'), labelWidth + length + 8, y + 6, INK);
  });
  canvas.fill(labelWidth - 1, 44, 1, bars.length * row + 4, INK);
  await writePng(path, canvas);
}

/** Writes the canvas as PNG, atomically. */
async function writePng(path: string, canvas: Canvas): Promise<void> {
  const { width, height } = canvas;
  // Encoded in memory and written by fs rather than sharp's toFile, whose errors span lines and carry no code.
  const png = await sharp(canvas.pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
  const tmp = `${path}.tmp-${process.pid}-${writes++}`;
  try {
    await writeFile(tmp, png);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new InputError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * Draws the finite values of `curve` (non-finite ones are skipped, the line joins their neighbours). Steps that share
 * a pixel column are reduced to their min and max (a vertical stroke) plus the first and last, which join the
 * neighbouring columns, so 100k steps cost one pass over the values and one stroke per column.
 */
function drawCurve(canvas: Canvas, curve: Curve, column: (step: number) => number, row: (v: number) => number, box: readonly [number, number, number, number]): void {
  const cols = new Map<number, { first: number; last: number; min: number; max: number }>();
  curve.values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const c = column(i + 1);
    const agg = cols.get(c);
    if (agg) Object.assign(agg, { last: v, min: Math.min(agg.min, v), max: Math.max(agg.max, v) });
    else cols.set(c, { first: v, last: v, min: v, max: v });
  });
  if (cols.size === 1) {
    const [[c, { first }]] = cols;
    canvas.fill(c - 3, row(first) - 3, 7, 7, curve.color); // a lone point would otherwise be a 2-pixel dot
    return;
  }
  let previous: [number, number] | undefined;
  for (const [c, { first, last, min, max }] of cols) {
    if (previous) canvas.line(previous[0], previous[1], c, row(first), curve.color, box);
    canvas.line(c, row(min), c, row(max), curve.color, box);
    previous = [c, row(last)];
  }
}
