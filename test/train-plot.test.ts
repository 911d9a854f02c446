// loss.png of `egret train lavin` (issue #11): the chart is decoded back and its curves are found by colour (no
// anti-aliasing, so a curve's pixels are exactly its colour). "The body" is the middle of the image, clear of the
// title and legend above, the step labels below and the tick labels beside the plot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { InputError } from '../src/errors.js';
import { writeCurvesPng, type Curve } from '../src/train/plot.js';

const BLUE: Curve['color'] = [31, 119, 180];
const ORANGE: Curve['color'] = [255, 127, 14];

interface Chart { width: number; height: number; pixels: Buffer }

async function render(curves: Curve[], opts?: { width?: number; height?: number }): Promise<Chart> {
  const dir = mkdtempSync(join(tmpdir(), 'egret-plot-'));
  try {
    const path = join(dir, 'loss.png');
    await writeCurvesPng(path, 'egret train lavin', curves, opts);
    const meta = await sharp(path).metadata();
    assert.equal(meta.format, 'png');
    const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 3);
    return { width: meta.width!, height: meta.height!, pixels: data };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** [x, y] of every pixel of exactly `color` in the rows and columns given as fractions of the image. */
function pixelsOf(chart: Chart, color: Curve['color'], [x0, x1, y0, y1] = [0.15, 0.85, 0.15, 0.85]): [number, number][] {
  const found: [number, number][] = [];
  for (let y = Math.ceil(y0 * chart.height); y < y1 * chart.height; y++) {
    for (let x = Math.ceil(x0 * chart.width); x < x1 * chart.width; x++) {
      const i = (y * chart.width + x) * 3;
      if (chart.pixels[i] === color[0] && chart.pixels[i + 1] === color[1] && chart.pixels[i + 2] === color[2]) found.push([x, y]);
    }
  }
  return found;
}

/** Pearson correlation of x and y (image y grows downwards: a falling curve correlates positively). */
function correlation(points: [number, number][]): number {
  const mean = (k: 0 | 1) => points.reduce((s, p) => s + p[k], 0) / points.length;
  const [mx, my] = [mean(0), mean(1)];
  let sxy = 0, sxx = 0, syy = 0;
  for (const [x, y] of points) [sxy, sxx, syy] = [sxy + (x - mx) * (y - my), sxx + (x - mx) ** 2, syy + (y - my) ** 2];
  return sxy / Math.sqrt(sxx * syy);
}

const ramp = (n: number, from: number, to: number) => Array.from({ length: n }, (_, i) => from + ((to - from) * i) / (n - 1));

test('a falling loss (left axis) and a rising lr (right axis) are drawn where they belong, at the size asked', async () => {
  const chart = await render([{ label: 'loss', values: ramp(200, 4, 0.5), color: BLUE }, { label: 'lr', values: ramp(200, 0, 1e-4), color: ORANGE }], { width: 640, height: 400 });
  assert.deepEqual([chart.width, chart.height], [640, 400]);
  const loss = pixelsOf(chart, BLUE), lr = pixelsOf(chart, ORANGE);
  assert.ok(loss.length > 300 && lr.length > 300, `${loss.length} loss and ${lr.length} lr pixels in the body`);
  assert.ok(correlation(loss) > 0.99, `loss falls left to right: r = ${correlation(loss)}`);
  assert.ok(correlation(lr) < -0.99, `lr rises left to right: r = ${correlation(lr)}`);
  // Each spans most of the plot's height (its own axis), the loss starting high on the left.
  const ys = (points: [number, number][]) => points.map(([, y]) => y);
  for (const points of [loss, lr]) assert.ok(Math.max(...ys(points)) - Math.min(...ys(points)) > 0.5 * chart.height);
  const leftmost = loss.reduce((a, b) => (b[0] < a[0] ? b : a));
  assert.ok(leftmost[1] < 0.3 * chart.height, `the loss starts near the top, at y = ${leftmost[1]}`);
  // The legend above the plot carries both colours; tick labels beside it are in their curve's colour.
  assert.ok(pixelsOf(chart, BLUE, [0.5, 1, 0, 0.1]).length > 0 && pixelsOf(chart, ORANGE, [0.5, 1, 0, 0.1]).length > 0);
  assert.ok(pixelsOf(chart, BLUE, [0, 0.1, 0.1, 0.9]).length > 0, 'loss tick labels on the left');
  assert.ok(pixelsOf(chart, ORANGE, [0.9, 1, 0.1, 0.9]).length > 0, 'lr tick labels on the right');
});

test('NaN and infinite values are skipped: the scale comes from the finite ones, an all-NaN curve draws nothing', async () => {
  const values = ramp(100, 3, 1);
  for (const i of [0, 10, 50, 51, 99]) values[i] = NaN;
  values[30] = Infinity;
  values[70] = -Infinity;
  const chart = await render([{ label: 'loss', values, color: BLUE }, { label: 'lr', values: [NaN, NaN, Infinity], color: ORANGE }]);
  const loss = pixelsOf(chart, BLUE);
  const ys = loss.map(([, y]) => y);
  assert.ok(Math.max(...ys) - Math.min(...ys) > 0.5 * chart.height, 'an infinity would have flattened the finite values');
  assert.ok(correlation(loss) > 0.99);
  assert.equal(pixelsOf(chart, ORANGE).length, 0);
  // Finite values whose span overflows a double still make a chart.
  assert.ok(pixelsOf(await render([{ label: 'loss', values: [1e308, -1e308, 0, 5], color: BLUE }]), BLUE).length > 0);
});

test('a constant curve is a flat line mid-plot and a single point is drawn', async () => {
  const chart = await render([{ label: 'loss', values: new Array(50).fill(2.5), color: BLUE }]);
  const ys = pixelsOf(chart, BLUE).map(([, y]) => y);
  assert.ok(ys.length > 0.5 * chart.width, `${ys.length} pixels`);
  assert.ok(Math.max(...ys) - Math.min(...ys) <= 1, 'two pixels thick, flat');
  assert.ok(ys[0]! > 0.3 * chart.height && ys[0]! < 0.7 * chart.height, `at y = ${ys[0]}`);

  const point = pixelsOf(await render([{ label: 'loss', values: [0.7], color: BLUE }]), BLUE);
  assert.ok(point.length > 0, 'the lone point is visible');
  assert.ok(Math.max(...point.map(([x]) => x)) - Math.min(...point.map(([x]) => x)) < 10, 'as one mark');
});

test('100k steps are reduced per pixel column, leaving no column of the run empty', async () => {
  const n = 100_000;
  const values = Array.from({ length: n }, (_, i) => 3 * Math.exp(-(4 * i) / n) + 0.2 * Math.sin(i * 0.37));
  const chart = await render([{ label: 'loss', values, color: BLUE }]);
  const loss = pixelsOf(chart, BLUE);
  assert.ok(correlation(loss) > 0.8, `falls overall: r = ${correlation(loss)}`);
  const columns = new Set(loss.map(([x]) => x));
  const [first, last] = [Math.min(...columns), Math.max(...columns)];
  assert.equal(columns.size, last - first + 1, 'every column between the ends has curve pixels');
  // The noise is ±0.2 within every column, so each column is a vertical stroke, not a dot.
  const middle = loss.filter(([x]) => x === Math.round(chart.width / 2)).map(([, y]) => y);
  assert.ok(Math.max(...middle) - Math.min(...middle) > 5, `the middle column spans ${Math.max(...middle) - Math.min(...middle)} pixels`);
});

test('written atomically: rewriting leaves one file; a missing folder is an InputError and leaves nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-plot-'));
  try {
    const curves: Curve[] = [{ label: 'loss', values: ramp(10, 2, 1), color: BLUE }];
    await writeCurvesPng(join(dir, 'loss.png'), 'run', curves);
    await writeCurvesPng(join(dir, 'loss.png'), 'run', [{ ...curves[0]!, values: ramp(20, 2, 1) }]);
    assert.deepEqual(readdirSync(dir), ['loss.png']);
    assert.equal((await sharp(join(dir, 'loss.png')).metadata()).width, 800);

    await assert.rejects(writeCurvesPng(join(dir, 'missing', 'loss.png'), 'run', curves), (err: Error) => err instanceof InputError && err.message.includes('missing'));
    assert.deepEqual(readdirSync(dir), ['loss.png']);
    // The temporary file is written, then the rename fails (the target is a folder): it is removed again.
    mkdirSync(join(dir, 'taken.png'));
    await assert.rejects(writeCurvesPng(join(dir, 'taken.png'), 'run', curves), InputError);
    assert.deepEqual(readdirSync(dir).sort(), ['loss.png', 'taken.png']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
