// The small-print task: the code is printed where the sample says, at a cap height of 8-16 px measured from the
// image's pixels, and it is under 3 px tall once the image is shrunk to 224 px (counted in LaVIN's and LLaVA's
// shrunken inputs too). The text is drawn with the shipped DejaVu Sans only, through egret's own fontconfig file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { emForCapHeight, FONT_FILE, inkCentres, renderText } from '../src/lab/font.js';
import { boxesOverlap, inkBox, type Box } from '../src/lab/raster.js';
import {
  CODE_ALPHABET, LOW_RES_SIDE, MAX_ANGLE, MAX_CAP_HEIGHT, MAX_LOW_RES_CAP_HEIGHT, MAX_CODE_LENGTH, MAX_SIDE, MIN_CAP_HEIGHT, MIN_CODE_LENGTH, MIN_SIDE, renderCodeSheet, renderSmallPrint, smallPrintText,
} from '../src/lab/smallprint.js';
import { decodeImage } from '../src/vision/decode.js';
import type { RGB, RGBImage } from '../src/vision/image.js';
import { preprocessLavin, preprocessLlavaPad } from '../src/vision/pipelines.js';
import { ROOT } from './helpers/cli.js';

interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

const luma = (img: RGBImage, x: number, y: number) => {
  const i = (y * img.width + x) * 3;
  return 0.299 * img.data[i]! + 0.587 * img.data[i + 1]! + 0.114 * img.data[i + 2]!;
};

/**
 * The ink of colour `ink` in a region of plain paper: the pixels darker than midway between the paper (the
 * region's median) and the ink, so covered at least half. Its box, the number of rows it touches and the contrast.
 */
function measureInk(img: RGBImage, region: Region, ink: RGB): Region & { rows: number; contrast: number } {
  const values: number[] = [];
  for (let y = region.y; y < region.y + region.height; y++) for (let x = region.x; x < region.x + region.width; x++) values.push(luma(img, x, y));
  const sorted = values.sort((a, b) => a - b);
  const paper = sorted[Math.floor(sorted.length / 2)]!;
  const inkLuma = 0.299 * ink[0] + 0.587 * ink[1] + 0.114 * ink[2];
  const threshold = (paper + inkLuma) / 2;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  const rows = new Set<number>();
  for (let y = region.y; y < region.y + region.height; y++) {
    for (let x = region.x; x < region.x + region.width; x++) {
      if (luma(img, x, y) >= threshold) continue;
      [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
      rows.add(y);
    }
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, rows: rows.size, contrast: paper - inkLuma };
}

function around(box: Region, margin: number, img: RGBImage): Region {
  const x = Math.max(0, Math.floor(box.x - margin));
  const y = Math.max(0, Math.floor(box.y - margin));
  return { x, y, width: Math.min(img.width, Math.ceil(box.x + box.width + margin)) - x, height: Math.min(img.height, Math.ceil(box.y + box.height + margin)) - y };
}

/**
 * How far the code's ink reaches past the cap height, as a share of it, in DejaVu Sans (counted at a cap height
 * of 200 px against an 'H': J descends 55 px, Q 35 px, round letters overshoot 4 px up and down).
 */
function inkShare(code: string): number {
  const above = /[CGOQS023689]/.test(code) ? 0.02 : 0;
  const below = code.includes('J') ? 0.275 : code.includes('Q') ? 0.175 : /[CGOSU035689]/.test(code) ? 0.02 : 0;
  return 1 + above + below;
}

test("the renderer's cap height is the asked one, counted in pixels, and the ink shares above hold", async () => {
  for (const cap of [8, 10.5, 13, 16, 200]) {
    const box = inkBox(await renderText('HEH', emForCapHeight(cap)))!;
    assert.ok(Math.abs(box.height - cap) <= 1, `cap ${cap}: ${box.height} rows of ink`);
  }
  for (const code of [...CODE_ALPHABET]) {
    const box = inkBox(await renderText(`H${code}`, emForCapHeight(200)))!;
    assert.ok(Math.abs(box.height - 200 * inkShare(code)) <= 1, `${code}: ${box.height} rows at cap 200`);
  }
});

test("each character's ink centre, from the font's metrics and kerning, is where the renderer draws it", async () => {
  // Every character of the alphabet, and pairs the font kerns (AV, VA, AT, T7, LT, TY, YJ).
  const cap = 100;
  for (const code of ['ABCDEF', 'GHIJKL', 'MNOPQR', 'STUVWX', 'YZ0123', '456789', 'W1I0MA', 'AVAT7L', 'LTYJ4']) {
    const whole = inkBox(await renderText(code, emForCapHeight(cap)))!;
    const along = inkCentres(code);
    for (let k = 0; k < code.length; k++) {
      // Measured: the right ink edge of the code's first k + 1 characters, less half the k-th glyph's own ink.
      const prefix = inkBox(await renderText(code.slice(0, k + 1), emForCapHeight(cap)))!;
      const alone = inkBox(await renderText(code[k]!, emForCapHeight(cap)))!;
      const drawn = prefix.x + prefix.width - whole.x - alone.width / 2;
      const error = Math.abs(drawn - along[k]! * whole.width) / cap;
      assert.ok(error <= 0.03, `${code}[${k}]: centre ${(along[k]! * whole.width).toFixed(1)} px, drawn at ${drawn.toFixed(1)} px`);
    }
  }
});

test('small print: legible code at 8-16 px, under 3 px at 224, where the sample says, among distractors', async () => {
  for (let index = 0; index < 10; index++) {
    const sample = await renderSmallPrint(11, index);
    const where = `sample ${index} (${sample.code})`;
    assert.match(sample.code, new RegExp(`^[${CODE_ALPHABET}]{${MIN_CODE_LENGTH},${MAX_CODE_LENGTH}}$`));
    assert.deepEqual(smallPrintText(11, index), { code: sample.code, question: sample.question });
    const img = await decodeImage(sample.png);
    assert.deepEqual([img.width, img.height], [sample.width, sample.height]);
    for (const side of [img.width, img.height]) assert.ok(side >= MIN_SIDE && side <= MAX_SIDE, where);

    // The code's ink, found in the pixels around the box the sample gives (no distractor comes that close).
    const ink = measureInk(img, around(sample.box, sample.capHeight, img), sample.ink);
    assert.ok(ink.contrast >= 100, `${where}: contrast ${ink.contrast}`);
    for (const [edge, measured, declared] of [['left', ink.x, sample.box.x], ['top', ink.y, sample.box.y],
      ['right', ink.x + ink.width, sample.box.x + sample.box.width], ['bottom', ink.y + ink.height, sample.box.y + sample.box.height]] as const) {
      assert.ok(Math.abs(measured - declared) <= 1, `${where}: ${edge} edge at ${measured}, the sample says ${declared}`);
    }
    // Undo the rotation: a box w x h rotated by a has the bounding box (w cos a + h sin a) x (w sin a + h cos a).
    const a = (Math.abs(sample.angle) * Math.PI) / 180;
    const inkHeight = (ink.height * Math.cos(a) - ink.width * Math.sin(a)) / Math.cos(2 * a);
    // A descender's thin tail (J, Q) may fade under the threshold at these sizes: the cap height lies between
    // what the ink gives with the tail and without it.
    const [low, high] = [inkHeight / inkShare(sample.code), inkHeight / inkShare(sample.code.replace(/[JQ]/g, 'O'))];
    const measured = `cap height ${low.toFixed(2)}-${high.toFixed(2)} px in the pixels, ${sample.capHeight.toFixed(2)} asked`;
    assert.ok(sample.capHeight >= low - 1.5 && sample.capHeight <= high + 1.5, `${where}: ${measured}`);
    assert.ok(sample.capHeight >= MIN_CAP_HEIGHT && sample.capHeight <= MAX_CAP_HEIGHT, where);
    assert.ok(high >= MIN_CAP_HEIGHT - 1 && low <= MAX_CAP_HEIGHT + 1, `${where}: ${measured}`);

    // Shrunk so the shorter side is 224 px, the capitals are under 3 px tall.
    const scale = LOW_RES_SIDE / Math.min(img.width, img.height);
    assert.ok(sample.capHeight * scale < 3, `${where}: ${(sample.capHeight * scale).toFixed(2)} px at 224`);
    // Counted: LaVIN squashes the image to 224 x 224, LLaVA pads it to a square first. The code's ink there
    // touches at most 3 rows, 4 with a descender (J, Q) or a tilt.
    const most = 3 + (/[JQ]/.test(sample.code) || sample.angle !== 0 ? 1 : 0);
    const squashed = preprocessLavin(img).image;
    const sx = 224 / img.width, sy = 224 / img.height;
    const lavinInk = measureInk(squashed, around({ x: sample.box.x * sx, y: sample.box.y * sy, width: sample.box.width * sx, height: sample.box.height * sy }, 2, squashed), sample.ink);
    assert.ok(lavinInk.rows <= most, `${where}: ${lavinInk.rows} rows of ink at 224 (LaVIN)`);
    const padded = preprocessLlavaPad(img, 224).image;
    const side = Math.max(img.width, img.height);
    const s = 224 / side;
    const [ox, oy] = [(side - img.width) / 2, (side - img.height) / 2];
    const llavaInk = measureInk(padded, around({ x: (sample.box.x + ox) * s, y: (sample.box.y + oy) * s, width: sample.box.width * s, height: sample.box.height * s }, 2, padded), sample.ink);
    assert.ok(llavaInk.rows <= most, `${where}: ${llavaInk.rows} rows of ink at 224 (LLaVA)`);
  }
});

test('the same seed and index give the same PNG bytes; others differ', async () => {
  const [a, b, c, d] = await Promise.all([renderSmallPrint(4, 2), renderSmallPrint(4, 2), renderSmallPrint(5, 2), renderSmallPrint(4, 3)]);
  assert.deepEqual(a.png, b.png);
  assert.notDeepEqual(a.png, c.png);
  assert.notDeepEqual(a.png, d.png);
});

test('text is drawn with the shipped font only: the same pixels without any fontconfig setup, and no other font reachable', async () => {
  const hash = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
  const here = hash((await renderText('K7Q2 gate', 30)).data);
  const fontUrl = new URL('../src/lab/font.js', import.meta.url).href;
  // A process whose environment names no usable fontconfig file: as on a machine without fonts or fontconfig.
  const script = `import { createHash } from 'node:crypto'; import { renderText } from '${fontUrl}';
    const m = await renderText('K7Q2 gate', 30); process.stdout.write(createHash('sha256').update(m.data).digest('hex'));`;
  const env = { ...process.env, FONTCONFIG_FILE: '/nonexistent/fonts.conf', FONTCONFIG_PATH: '/nonexistent', HOME: '/nonexistent', XDG_DATA_HOME: '/nonexistent' };
  assert.equal(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env, encoding: 'utf8' }), here);
  // With egret's fontconfig file but without the font file, 'DejaVu Sans' is not found (a fresh process: the
  // font file, once added, stays registered in the process).
  const withoutFile = `import sharp from 'sharp'; import { createHash } from 'node:crypto';
    process.env.FONTCONFIG_FILE = ${JSON.stringify(`${ROOT}assets/fonts/fonts.conf`)};
    const { data } = await sharp({ text: { text: 'K7Q2 gate', font: 'DejaVu Sans 30.000px', dpi: 72 } }).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    process.stdout.write(createHash('sha256').update(data).digest('hex'));`;
  assert.notEqual(execFileSync(process.execPath, ['--input-type=module', '-e', withoutFile], { cwd: ROOT, env, encoding: 'utf8' }), here);
  assert.ok(FONT_FILE.startsWith(`${ROOT}assets/fonts/`), FONT_FILE);
});

test('code sheets with words: the words lie among the codes, a cell from each, and the codes are still where the sheet says', async () => {
  const [plain, worded, again] = await Promise.all([renderCodeSheet(3, 1, 768, 32, 0, 100), renderCodeSheet(3, 1, 768, 32, 0, 100, 100), renderCodeSheet(3, 1, 768, 32, 0, 100, 100)]);
  assert.deepEqual(worded.png, again.png);
  assert.ok(worded.codes.length >= 30 && worded.codes.length < plain.codes.length, `${worded.codes.length} codes with words, ${plain.codes.length} without`);
  // Ink well away from every code (words, and the few shapes both have): far more of it with the words.
  const inkAway = async (sheet: typeof plain) => {
    const img = await decodeImage(sheet.png);
    let dark = 0;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        if (sheet.codes.some(({ box }) => x > box.x - 24 && x < box.x + box.width + 24 && y > box.y - 24 && y < box.y + box.height + 24)) continue;
        const i = (y * img.width + x) * 3;
        if (img.data[i]! + img.data[i + 1]! + img.data[i + 2]! < 3 * 140) dark++;
      }
    }
    return dark;
  };
  const [without, withWords] = await Promise.all([inkAway(plain), inkAway(worded)]);
  assert.ok(withWords > 3 * without, `${withWords} dark pixels away from the codes with words, ${without} without`);
  const img = await decodeImage(worded.png);
  // The sheet says where each word's ink is: most of the ink away from the codes lies in its word boxes, none of
  // which comes within a cell of a code.
  assert.ok(worded.words.length >= 30 && plain.words.length < 10, `${worded.words.length} word boxes with words, ${plain.words.length} without`);
  const near = (box: Box, gap: number) => ({ x: box.x - gap, y: box.y - gap, width: box.width + 2 * gap, height: box.height + 2 * gap });
  for (const word of worded.words) assert.ok(!worded.codes.some(({ box }) => boxesOverlap(near(box, 31), word)), `word at ${JSON.stringify(word)} within a cell of a code`);
  let [inWords, away] = [0, 0];
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 3;
      if (img.data[i]! + img.data[i + 1]! + img.data[i + 2]! >= 3 * 140) continue;
      if (worded.codes.some(({ box }) => boxesOverlap(near(box, 2), { x, y, width: 1, height: 1 }))) continue;
      away++;
      if (worded.words.some((box) => boxesOverlap(near(box, 2), { x, y, width: 1, height: 1 }))) inWords++;
    }
  }
  assert.ok(inWords > 0.6 * away, `${inWords} of ${away} dark pixels away from the codes lie in word boxes`);
  for (const { code, box, ink } of worded.codes.slice(0, 8)) {
    const measured = measureInk(img, around(box, 8, img), ink);
    assert.ok(Math.abs(measured.x - box.x) <= 1 && Math.abs(measured.y - box.y) <= 1 && Math.abs(measured.width - box.width) <= 2 && Math.abs(measured.height - box.height) <= 2,
      `${code}: ink at ${JSON.stringify(measured)}, the sheet says ${JSON.stringify(box)}`);
  }
});

test('code sheets: smallCaps prints the codes at the smallest share of the task\'s cap heights only', async () => {
  const [small, all] = await Promise.all([renderCodeSheet(3, 1, 1024, 32, 0, 150, 0, 0.25), renderCodeSheet(3, 1, 1024, 32, 0, 150)]);
  // At 1024 px the task's caps run from 8 px to 2.9 px at 224 (13.3 px); a quarter of that range tops out at 9.3.
  const full = (MAX_LOW_RES_CAP_HEIGHT * 1024) / LOW_RES_SIDE;
  const top = MIN_CAP_HEIGHT + 0.25 * (full - MIN_CAP_HEIGHT);
  const tallest = (cap: number, { code, box }: { code: string; box: Box }) => cap * inkShare(code) + box.width * Math.sin((MAX_ANGLE * Math.PI) / 180) + 1;
  assert.ok(small.codes.length >= 80, `${small.codes.length} codes`);
  for (const c of small.codes) assert.ok(c.box.height >= MIN_CAP_HEIGHT - 1 && c.box.height <= tallest(top, c), `${c.code}: ${c.box.height} px tall`);
  // Drawn over the whole range, some codes are taller than that even with the bound's slack for tilt and antialiasing.
  const taller = all.codes.filter((c) => c.box.height > tallest(top, c)).length;
  assert.ok(taller > all.codes.length / 8, `${taller} of ${all.codes.length} codes taller than a ${top.toFixed(1)}-px cap allows`);
  for (const share of [0, -0.5, 1.5, Number.NaN]) await assert.rejects(renderCodeSheet(3, 1, 1024, 32, 0, 10, 0, share), /smallCaps must be in \(0, 1\]/);
});

test('code sheets: a hundred codes where the sheet says, at the task\'s sizes in a 768-px input, a cell apart; reproducible', async () => {
  const [sheet, again, other] = await Promise.all([renderCodeSheet(3, 1, 768, 32, 0, 150), renderCodeSheet(3, 1, 768, 32, 0, 150), renderCodeSheet(3, 2, 768, 32, 0, 150)]);
  assert.deepEqual(sheet.png, again.png);
  assert.notDeepEqual(sheet.png, other.png);
  const img = await decodeImage(sheet.png);
  assert.deepEqual([img.width, img.height], [768, 768]);
  assert.ok(sheet.codes.length >= 80, `${sheet.codes.length} codes`);
  for (const [i, { code, box }] of sheet.codes.entries()) {
    assert.match(code, new RegExp(`^[${CODE_ALPHABET}]{${MIN_CODE_LENGTH},${MAX_CODE_LENGTH}}$`));
    // Cap heights of 6-9.9 px (the task's code once its image is resized to 768): the ink is no shorter than 6 px
    // less a pixel of antialiasing, no taller than 16 px with a descender (inkShare) and a 3° tilt across the code.
    const tallest = MAX_CAP_HEIGHT * inkShare(code) + box.width * Math.sin((3 * Math.PI) / 180) + 1;
    assert.ok(box.height >= 5 && box.height <= tallest, `${code}: ${box.height} px tall`);
    for (const other of sheet.codes.slice(i + 1)) {
      const apart = Math.max(other.box.x - (box.x + box.width), box.x - (other.box.x + other.box.width), other.box.y - (box.y + box.height), box.y - (other.box.y + other.box.height));
      assert.ok(apart >= 32, `${code} and ${other.code} ${apart} px apart`);
    }
  }
  for (const { code, box, ink } of sheet.codes.slice(0, 8)) {
    const measured = measureInk(img, around(box, 8, img), ink);
    assert.ok(Math.abs(measured.x - box.x) <= 1 && Math.abs(measured.y - box.y) <= 1 && Math.abs(measured.width - box.width) <= 2 && Math.abs(measured.height - box.height) <= 2,
      `${code}: ink at ${JSON.stringify(measured)}, the sheet says ${JSON.stringify(box)}`);
  }
});
