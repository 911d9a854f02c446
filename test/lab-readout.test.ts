// The read-out probe (src/lab/readout-probe.ts): its synthetic visual tokens hold exactly what they say, and a
// decoder trained on them learns a character that lies in every cell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runReadoutProbe, syntheticVisualTokens, type ReadoutProbeReport } from '../src/lab/readout-probe.js';
import { readoutVectors } from '../src/lab/readout-vectors.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labTokenizerModel } from '../src/lab/datasets.js';
import { Rng } from '../src/lab/random.js';
import { answerFeeds, answerRows, placeRows, placeStrength, smallPrintExample } from '../src/lab/answer-aids.js';
import { loadTokenizer } from '../src/text/load.js';
import { CODE_ALPHABET } from '../src/lab/smallprint.js';
import { FULL_PLAN } from '../src/lab/plans.js';
import { assertInputError, egret, ROOT } from './helpers/cli.js';

const WIDTH = 8;
const vectors = readoutVectors(WIDTH, 3);

function cell(grid: Float32Array, c: number): Float32Array {
  return grid.slice(c * WIDTH, (c + 1) * WIDTH);
}

function assertClose(actual: Float32Array, expected: number[], what: string): void {
  actual.forEach((x, d) => assert.ok(Math.abs(x - expected[d]!) < 1e-6, `${what}, dim ${d}: ${x} vs ${expected[d]}`));
}

/** blank + marker + the slot vectors of the code's characters that lie in cell c. */
function expectedCodeCell(code: string, at: number[], c: number): number[] {
  const sum = [...vectors.blank].map((x, d) => x + vectors.marker[d]!);
  [...code].forEach((ch, k) => {
    if (at[k] !== c) return;
    const v = vectors.slots[k]![CODE_ALPHABET.indexOf(ch)]!;
    for (let d = 0; d < WIDTH; d++) sum[d]! += v[d]!;
  });
  return sum;
}

test('synthetic visual tokens: the code over one or two neighbouring cells, or a cell a character, holding its slot vectors', () => {
  const rng = new Rng(7);
  for (let i = 0; i < 20; i++) {
    const code = ['A7K2', 'QX90B', 'ZZ1ZZ9'][i % 3]!;
    const { grid, at } = syntheticVisualTokens(vectors, code, 'code', 64, rng);
    const cells = [...new Set(at)];
    assert.ok(cells.length === 2 && cells[1] === cells[0]! + 1, `code cells ${at}`);
    assert.deepEqual(at, [...at].sort((a, b) => a - b));
    for (const c of cells) assertClose(cell(grid, c), expectedCodeCell(code, at, c), `code ${code}, cell ${c}`);

    const one = syntheticVisualTokens(vectors, code, 'one', 64, rng);
    assert.deepEqual(one.at, [...code].map((_, k) => one.at[0]! + k));
    for (const c of one.at) assertClose(cell(one.grid, c), expectedCodeCell(code, one.at, c), `one, cell ${c}`);
  }
  // Away from the code and the distractors, a cell is the blank vector.
  const { grid, at } = syntheticVisualTokens(vectors, 'A7K2', 'code', 4096, new Rng(1));
  const blanks = Array.from({ length: 4096 }, (_, c) => c).filter((c) => !at.includes(c) && cell(grid, c).every((x, d) => x === vectors.blank[d]));
  assert.ok(blanks.length >= 4096 - 2 - 30, `${blanks.length} blank cells`);

  const everywhere = syntheticVisualTokens(vectors, 'K2A7', 'everywhere', 16, rng);
  for (let c = 0; c < 16; c++) assertClose(cell(everywhere.grid, c), [...vectors.slots[0]![CODE_ALPHABET.indexOf('K')]!], `everywhere, cell ${c}`);
  const whole = syntheticVisualTokens(vectors, 'K2A7', 'whole', 16, rng);
  const code = [...'K2A7'].map((ch, k) => vectors.slots[k]![CODE_ALPHABET.indexOf(ch)]!);
  for (let c = 0; c < 16; c++) assertClose(cell(whole.grid, c), Array.from({ length: WIDTH }, (_, d) => code.reduce((s, v) => s + v[d]!, 0)), `whole, cell ${c}`);
});

test('probe vectors in blocks: place k lies in its own block of the width; the rest as without blocks', () => {
  const width = 24;
  const plain = readoutVectors(width, 5);
  const blocked = readoutVectors(width, 5, { blocks: true });
  const scaled = readoutVectors(width, 5, { std: 0.5 });
  assert.deepEqual(blocked.marker, plain.marker);
  assert.deepEqual(blocked.blank, plain.blank);
  assertCloseScaled(scaled.blank, plain.blank, 10);
  const block = width / 6;
  blocked.slots.forEach((place, k) => place.forEach((v, ch) => v.forEach((x, d) => {
    const inside = d >= k * block && d < (k + 1) * block;
    assert.ok(Math.abs(x - (inside ? Math.sqrt(6) * plain.slots[k]![ch]![d]! : 0)) < 1e-6, `place ${k}, character ${ch}, dim ${d}`);
  })));
});

test('probe vectors keyed by the character before: a code cell holds, for each of its characters, the vector of (the one before, it)', () => {
  const keyed = readoutVectors(WIDTH, 3, { previous: true });
  // The other vectors are drawn as without the keying.
  assert.deepEqual([keyed.marker, keyed.blank, ...keyed.places], [vectors.marker, vectors.blank, ...vectors.places]);
  const follows = keyed.follows!;
  assert.deepEqual([follows.length, follows[0]!.length], [CODE_ALPHABET.length + 1, CODE_ALPHABET.length]);
  const code = 'A7AK2';
  const { grid, at } = syntheticVisualTokens(keyed, code, 'code', 64, new Rng(2));
  for (const c of new Set(at)) {
    const expected = [...keyed.blank].map((x, d) => x + keyed.marker[d]!);
    [...code].forEach((ch, k) => {
      if (at[k] !== c) return;
      const before = k === 0 ? CODE_ALPHABET.length : CODE_ALPHABET.indexOf(code[k - 1]!);
      const v = follows[before]![CODE_ALPHABET.indexOf(ch)]!;
      for (let d = 0; d < WIDTH; d++) expected[d]! += v[d]!;
    });
    assertClose(cell(grid, c), expected, `cell ${c}`);
  }
});

function assertCloseScaled(actual: Float32Array, base: Float32Array, factor: number): void {
  actual.forEach((x, d) => assert.ok(Math.abs(x - factor * base[d]!) < 1e-6, `dim ${d}: ${x} vs ${factor} × ${base[d]}`));
}

test('the probe trains the decoder: a first character that lies in every cell is learnt; the aid is reported', async () => {
  const shape = { ...FULL_PLAN.mra.shape, llm: { width: 32, layers: 1, heads: 2, intermediate: 64 } };
  const base = { shape, cells: 16, batch: 4, lr: 1e-2, aidLayer: -1, seed: 0, threads: 1 };
  const reports: ReadoutProbeReport[] = [];
  const curve = await runReadoutProbe({ ...base, steps: 200, layout: 'everywhere', attention: 0, firstUntil: 200 }, (r) => reports.push(r), 50);
  assert.deepEqual(curve, reports);
  assert.deepEqual(curve.map((r) => r.step), [50, 100, 150, 200]);
  assert.ok(curve.every((r) => r.attention === undefined));
  // Chance among the 36 characters is ln 36 = 3.58; the untrained decoder starts far above it (ln of the vocabulary).
  assert.ok(curve[3]!.answer < 0.6 * Math.log(CODE_ALPHABET.length), `answer loss ${curve.map((r) => r.answer.toFixed(2))}`);

  const aided = await runReadoutProbe({ ...base, steps: 3, layout: 'code', attention: 1, firstUntil: 0 }, () => undefined, 2);
  assert.deepEqual(aided.map((r) => r.step), [2, 3]);
  for (const r of aided) assert.ok(Number.isFinite(r.answer) && r.attention !== undefined && r.attention > 0, JSON.stringify(r));
  // noise: fresh noise on every token changes what the decoder sees; 0 is no noise.
  const clean = { ...base, steps: 2, layout: 'code' as const, attention: 1, firstUntil: 0 };
  const [plain] = await runReadoutProbe(clean, () => undefined, 2);
  const [silent] = await runReadoutProbe({ ...clean, noise: 0 }, () => undefined, 2);
  const [noisy] = await runReadoutProbe({ ...clean, noise: 1 }, () => undefined, 2);
  assert.equal(silent!.answer, plain!.answer);
  assert.ok(Number.isFinite(noisy!.answer) && noisy!.answer !== plain!.answer, `answer ${noisy!.answer} with noise, ${plain!.answer} without`);
  // givePlace: the place vectors go into the decoder's input (a run of it trains; placeRows is checked below).
  const given = await runReadoutProbe({ ...base, steps: 2, layout: 'code', attention: 1, firstUntil: 0, givePlace: true }, () => undefined, 2);
  assert.ok(given.length === 1 && Number.isFinite(given[0]!.answer), JSON.stringify(given));
  // The place aid: the layer's rows against the place vectors. Handed the place (in the row's input, so in the
  // residual), a fresh decoder's rows are nearer to it than without.
  const placeAid = { ...base, steps: 1, layout: 'code' as const, attention: 0, firstUntil: 0, placeAid: 1, positionLayer: 0 };
  const [withPlace] = await runReadoutProbe({ ...placeAid, givePlace: true }, () => undefined, 1);
  const [without] = await runReadoutProbe(placeAid, () => undefined, 1);
  assert.ok(withPlace!.place! > 0 && withPlace!.place! < without!.place!, `place losses ${withPlace!.place} with the place, ${without!.place} without`);
  const placed = await runReadoutProbe({ ...base, steps: 2, layout: 'code', attention: 1, aidLayer: 0, sink: true, positionAid: 1, positionLayer: 0, firstUntil: 0 }, () => undefined, 2);
  // A fresh position head guesses among the code's 6 places: its loss starts near ln 6.
  for (const r of placed) assert.ok(r.position !== undefined && Math.abs(r.position - Math.log(6)) < 0.5 && r.attention! > 0, JSON.stringify(r));
});

test('givePlace rows: place k\'s vector at the row that predicts the code\'s k-th character, zero elsewhere', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-readout-'));
  try {
    await writeFile(join(dir, 'tokenizer.model'), labTokenizerModel(0, 200, 512));
    const tokenizer = await loadTokenizer(dir);
    const examples = [smallPrintExample(tokenizer, 'What is the code?', 'A7K2', true), smallPrintExample(tokenizer, 'What is the code?', 'QX90BZ', false)];
    const cells = 16;
    const seq = answerFeeds(examples, cells, false).targets!.dims[1]!;
    const rows = placeRows(examples, cells, seq, vectors.places).data as Float32Array;
    const half = placeRows(examples, cells, seq, vectors.places, 0.5).data as Float32Array;
    half.forEach((x, i) => assert.ok(Math.abs(x - 0.5 * rows[i]!) < 1e-7, `element ${i}`));
    examples.forEach((e, b) => {
      const place = new Map(answerRows(e, e.before.length + cells, false).code.map(({ k, row }) => [row, k]));
      assert.equal(place.size, [...(b === 0 ? 'A7K2' : 'QX90BZ')].length);
      for (let row = 0; row < seq; row++) {
        const k = place.get(row);
        const expected = k === undefined ? new Array(WIDTH).fill(0) : [...vectors.places[k]!];
        assertClose(rows.slice((b * seq + row) * WIDTH, (b * seq + row + 1) * WIDTH), expected, `example ${b}, row ${row}`);
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a place handed until step N: in full for N/2 steps, then fading linearly to nothing at N', () => {
  assert.deepEqual([0, 49, 50, 75, 99, 100, 500].map((s) => placeStrength(s, 100)), [1, 1, 1, 0.5, 0.02, 0, 0]);
  assert.equal(placeStrength(10_000, undefined), 1);
});

test('egret lab readout refuses bad options with one line, before any training', async () => {
  assertInputError(await egret('lab', 'readout', '--layout', 'grid'), /--layout must be code, one, everywhere, whole, not 'grid'/);
  assertInputError(await egret('lab', 'readout', '--aid-layer', '3'), /--aid-layer must be an integer from -3 to 2, got '3'/);
  assertInputError(await egret('lab', 'readout', '--aid-layer='), /--aid-layer must be an integer/);
  assertInputError(await egret('lab', 'readout', '--attention', 'much'), /--attention must be a number from 0 to 100, got 'much'/);
  assertInputError(await egret('lab', 'readout', '--lr', '0'), /--lr must be a number above 0 and at most 1, got '0'/);
  assertInputError(await egret('lab', 'readout', '--steps', '1.5'), /--steps must be an integer from 1 to/);
  assertInputError(await egret('lab', 'readout', '--position=-1'), /--position must be a number from 0 to 100, got '-1'/);
  assertInputError(await egret('lab', 'readout', '--position-layer', '5'), /--position-layer must be an integer from -3 to 2, got '5'/);
  assertInputError(await egret('lab', 'readout', '--decoder-layers', '4', '--aid-layer', '4'), /--aid-layer must be an integer from -4 to 3, got '4'/);
  assertInputError(await egret('lab', 'readout', '--give-place', '--give-place-until', '10'), /--give-place and --give-place-until do not go together/);
  assertInputError(await egret('lab', 'readout', '--give-place-until', '1'), /--give-place-until must be an integer from 2 to/);
  assertInputError(await egret('lab', 'readout', '--decoder-layers', '0'), /--decoder-layers must be an integer from 1 to 32, got '0'/);
  assertInputError(await egret('lab', 'readout', '--blocks', '--previous'), /--blocks and --previous do not go together/);
  assertInputError(await egret('lab', 'readout', '--vector-std', '0'), /--vector-std must be a number above 0 and at most 100, got '0'/);
  assertInputError(await egret('lab', 'readout', '--out', `${ROOT}/package.json`), /package\.json exists; give a new file/);
});
