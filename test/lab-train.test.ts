/**
 * Lab models trained from scratch: what a training run saves is the model it trained, as egret's ordinary loader
 * reads the family's layout. The training graph's logits for a prompt with an image (weights read back from the
 * saved pytorch_model.bin) equal `egret logits` on the saved folder, for a lab LLaVA-HR and a lab LLaVA-1.5.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { labTokenizerModel } from '../src/lab/datasets.js';
import { labLlavaHrModel, labLlavaModel, type LabVisualModel } from '../src/lab/models.js';
import { answerFeeds, answerRows, smallPrintExample } from '../src/lab/answer-aids.js';
import { trainLabModel } from '../src/lab/train-visual.js';
import { trainReadout } from '../src/lab/readout-probe.js';
import { markerRanks, pretrainTokenPath, tokenTargets, unblockReadingHead, visualScaleLoss } from '../src/lab/pretrain-tokens.js';
import { readoutVectors } from '../src/lab/readout-vectors.js';
import { identityLayout, WeightScope } from '../src/graph/weights.js';
import { buildMultipathVision, llavaHrConfig, projectVisual } from '../src/models/llava-hr.js';
import { mapToTokens } from '../src/models/llava-hr/mr-adapter.js';
import { linear } from '../src/models/linear.js';
import { blockedReadingHeadSpecs, cellsReadAsCharacters, cellTargets, glyphTargets, IGNORE, NO_CHARACTER, READING_HEAD, READING_SLOTS, readInPlace, readingHeadLogits, readingHeadLoss, readingHeadSpecs, readingTargets } from '../src/lab/reading.js';
import { Graph } from '../src/graph/ir.js';
import { MemorySource } from '../src/io/memory-source.js';
import { pretrainConvnext, readingCeiling } from '../src/lab/pretrain-convnext.js';
import { freshTensors } from '../src/train/scratch.js';
import { CODE_ALPHABET, renderSmallPrint, smallPrintText } from '../src/lab/smallprint.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { wholeSequenceFeeds } from '../src/models/decoder.js';
import { causalMask } from '../src/runtime/kv-cache.js';
import { ort, Session } from '../src/runtime/session.js';
import { IMAGE_TOKEN_INDEX } from '../src/text/image-prompt.js';
import { loadTokenizer } from '../src/text/load.js';
import { loadImage } from '../src/vision/decode.js';
import { egret, ROOT } from './helpers/cli.js';
import { maxAbsDiff } from './helpers/compare.js';

const TINY = { vit: { width: 32, layers: 4, heads: 2, patch: 4, imageSize: 16 }, llm: { width: 32, layers: 2, heads: 2, intermediate: 64 }, vocab: 400 };
const IMAGE = join(ROOT, 'test/fixtures/images/wide_rgb.png');

async function checkSavedModel(model: LabVisualModel, aids = 0): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'egret-lab-train-'));
  try {
    const losses: number[] = [];
    const readingLosses: (number | undefined)[] = [];
    const attentionLosses: (number | undefined)[] = [];
    const tokenizerModel = labTokenizerModel(0, 40, 400);
    await trainLabModel(dir, model, tokenizerModel, {
      seed: 3, steps: 2, batchSize: 1, lr: 1e-3, warmup: 1, threads: 1, reading: aids, attention: aids,
      onStep: (r) => (losses.push(r.loss), readingLosses.push(r.reading), attentionLosses.push(r.attention)),
    });
    assert.equal(losses.length, 2);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    // The reading head starts near ln 37 (36 characters and 'no character'); the attention aid's cross-entropy is
    // over the keys a code character's row sees (over a hundred: the prompt and the visual tokens). Without the
    // aids there are no such losses.
    if (aids) {
      assert.ok(readingLosses.every((x) => Math.abs(x! - Math.log(37)) < 0.5), `reading losses ${readingLosses}`);
      assert.ok(attentionLosses.every((x) => x! > Math.log(50) && x! < 20), `attention losses ${attentionLosses}`);
    } else {
      assert.deepEqual([...readingLosses, ...attentionLosses], [undefined, undefined, undefined, undefined]);
    }

    // The training graph on the saved weights, as an inference session.
    const tokenizer = await loadTokenizer(dir);
    const example = smallPrintExample(tokenizer, 'What is the code?', 'AB12', false);
    const source = await openCheckpoint(dir);
    // Every tensor of the family's layout (post_layernorm too, which the forward never reads), and nothing else (no reading head).
    assert.deepEqual(source.list().map((t) => t.name).sort(), [...model.specs.keys()].sort());
    const forward = model.forward(source);
    const session = await Session.fromGraph(forward.graph, { threads: 1 });
    const pixels = model.preprocess(await loadImage(IMAGE));
    const seq = example.before.length + model.visualTokens + example.after.length;
    const ids = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
    const out = await session.run({
      ...wholeSequenceFeeds(1, seq, causalMask([0], [seq], seq, 0)),
      pixel_values: new ort.Tensor('float32', pixels, [1, 3, model.size, model.size]),
      before_ids: ids(example.before),
      after_ids: ids(example.after),
    });
    await session.dispose();
    await source.close();
    const trained = out['logits']!.data as Float32Array;

    // The saved folder through egret's loader: the same prompt with its image placeholder.
    const promptIds = [...example.before, IMAGE_TOKEN_INDEX, ...example.after];
    const file = join(dir, 'logits.safetensors');
    const run = await egret('logits', '--model', dir, '--ids', promptIds.join(','), '--image', IMAGE, '--out', file, '--threads', '1', '--no-cache');
    assert.equal(run.code, 0, run.stderr);
    const saved = await openCheckpoint(file);
    const logits = await saved.readFloat32('logits');
    await saved.close();
    assert.equal(logits.length, trained.length);
    assert.ok(maxAbsDiff(logits, trained) <= 1e-4, `max |Δ| ${maxAbsDiff(logits, trained)}`);
    // Training that starts from the saved weights (initFrom) at a learning rate of 0 saves them unchanged.
    const again = join(dir, 'again');
    await trainLabModel(again, model, tokenizerModel, { seed: 4, steps: 1, batchSize: 1, lr: 0, warmup: 1, threads: 1, reading: aids, attention: aids, initFrom: dir });
    const [first, second] = [await openCheckpoint(dir), await openCheckpoint(again)];
    for (const name of model.specs.keys()) assert.equal(maxAbsDiff(await second.readFloat32(name), await first.readFloat32(name)), 0, name);
    await Promise.all([first.close(), second.close()]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a lab LLaVA-HR trained from scratch (with the reading head and the attention aid) loads as LLaVA-HR with the logits it trained to, the head left out; training goes on from it', async () => {
  // ConvNeXt at 128: a 4×4 last-stage map, aligned to the ViT's 4×4 grid at 16 px.
  await checkSavedModel(labLlavaHrModel({ ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } }), 1);
});

test('reading targets: slot k of the cell of the padded square where the code\'s k-th character\'s centre falls', () => {
  // 200 × 100 pads to 200 × 200 (50 px above): a 4-character code 80 px wide at (40, 20), 10 px tall; 10 × 10 cells of 20 px.
  const targets = readingTargets({ code: 'A1Z9', width: 200, height: 100, box: { x: 40, y: 20, width: 80, height: 10 } }, 10);
  assert.equal(targets.length, 100 * READING_SLOTS);
  const slots = (cell: number) => [...targets.subarray(cell * READING_SLOTS, (cell + 1) * READING_SLOTS)];
  // Centres (by the font's metrics) at x 50.4, 71.3, 91.6, 112.2 and y 75: cells (2, 3), (3, 3), (4, 3), (5, 3), each with its place in the code.
  const none = NO_CHARACTER;
  const at = (k: number, ch: string) => Array.from({ length: READING_SLOTS }, (_, j) => (j === k ? CODE_ALPHABET.indexOf(ch) : none));
  assert.deepEqual([32, 33, 34, 35].map(slots), [at(0, 'A'), at(1, '1'), at(2, 'Z'), at(3, '9')]);
  // Blank cells: every slot of one in 16 says 'no character'; the rest are ignored.
  assert.deepEqual(slots(0), new Array(READING_SLOTS).fill(none));
  assert.deepEqual(slots(1), new Array(READING_SLOTS).fill(-100));
  const told = [...Array(100).keys()].filter((cell) => slots(cell).every((c) => c === none));
  assert.deepEqual(told, [...Array(100).keys()].filter((cell) => cell % 16 === 0 && (cell < 32 || cell > 35)));
  // With a blank stride of 1 every cell without a character says it, and the code's cells are as before.
  const all = readingTargets({ code: 'A1Z9', width: 200, height: 100, box: { x: 40, y: 20, width: 80, height: 10 } }, 10, 1);
  for (let cell = 0; cell < 100; cell++) {
    const mine = [...all.subarray(cell * READING_SLOTS, (cell + 1) * READING_SLOTS)];
    assert.deepEqual(mine, cell >= 32 && cell <= 35 ? slots(cell) : new Array(READING_SLOTS).fill(none), `cell ${cell}`);
  }
});

test('glyph targets: each small cell names the characters whose centres lie in it, left to right, whatever their code', () => {
  // Two codes in a 32-px window of 8-px cells (4 × 4): 'AB' with both centres in cell (1, 0), 'C' in cell (2, 3).
  const at = (ch: string, x: number, y: number) => ({ index: CODE_ALPHABET.indexOf(ch), x, y });
  const targets = glyphTargets([[at('B', 14, 4), at('A', 9, 5)], [at('C', 20, 28)]], 0, 0, 32, 8, 16);
  const slots = (cell: number) => [...targets.subarray(cell * READING_SLOTS, (cell + 1) * READING_SLOTS)];
  const named = (...chars: string[]) => Array.from({ length: READING_SLOTS }, (_, j) => (j < chars.length ? CODE_ALPHABET.indexOf(chars[j]!) : NO_CHARACTER));
  assert.deepEqual(slots(1), named('A', 'B'));
  assert.deepEqual(slots(14), named('C'));
  assert.deepEqual(slots(0), new Array(READING_SLOTS).fill(NO_CHARACTER));
  assert.deepEqual(slots(2), new Array(READING_SLOTS).fill(IGNORE));
});

test('a lab LLaVA-1.5 trained from scratch loads as llava-hf with the logits it trained to; training goes on from it', async () => {
  await checkSavedModel(labLlavaModel(TINY));
});

test('stage 0: the ConvNeXt alone trains on crops; only its tensors change, and the MRA training starts from them', async () => {
  const model = labLlavaHrModel({ ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } });
  const fresh = freshTensors(model.specs, 5);
  const losses: number[] = [];
  const glyphs: number[] = [];
  const { source: trained, ceiling } = await pretrainConvnext(model, fresh, {
    seed: 5, steps: 2, sheets: 1, codes: 20, crops: 2, crop: 64, lr: 1e-3, warmup: 1, ease: 1, easeSteps: 2, threads: 1,
    onStep: (r) => (losses.push(r.loss), glyphs.push(r.glyphs)), check: { seed: 9, count: 2 },
  });
  // The check reads every character of both held-out codes, grouped by cap height.
  const lengths = [0, 1].map((i) => smallPrintText(9, i).code.length);
  assert.equal(ceiling?.images, 2);
  assert.equal(ceiling.byCapHeight.reduce((n, s) => n + s.characters, 0), lengths[0]! + lengths[1]!);
  assert.ok(ceiling.byCapHeight.every((s) => s.share >= 0 && s.share <= 1 && Number.isInteger(s.capHeight)));
  assert.equal(losses.length, 2);
  assert.ok(losses.every(Number.isFinite), `${losses}`);
  assert.ok(glyphs.every((share) => share >= 0 && share <= 1), `glyph head read ${glyphs}`);
  assert.deepEqual(trained.list().map((t) => t.name).sort(), [...model.specs.keys()].sort());
  for (const name of model.specs.keys()) {
    const same = maxAbsDiff(await trained.readFloat32(name), await fresh.readFloat32(name)) === 0;
    // Layer scales and norms may stay put in two small steps; the convolutions may not.
    if (name.startsWith(model.convnext!.prefix)) { if (/conv_dw\.weight|stem\.0\.weight/.test(name)) assert.ok(!same, `${name} did not train`); } else assert.ok(same, `${name} changed`);
  }
  await assert.rejects(pretrainConvnext(model, fresh, { seed: 5, steps: 1, sheets: 1, codes: 20, crops: 1, crop: 48, lr: 1e-3, warmup: 1, ease: 0, easeSteps: 1 }), /crop 48 must be a multiple of 32 up to 128/);
  await assert.rejects(pretrainConvnext(model, fresh, { seed: 5, steps: 1, sheets: 1, renderEvery: 0.5, codes: 20, crops: 1, crop: 64, lr: 1e-3, warmup: 1, ease: 0, easeSteps: 1 }), /renderEvery must be a whole number of steps ≥ 1, not 0.5/);
  await assert.rejects(pretrainConvnext(model, fresh, { seed: 5, steps: 1, sheets: 1, smallCaps: 0, codes: 20, crops: 1, crop: 64, lr: 1e-3, warmup: 1, ease: 0, easeSteps: 1 }), /smallCaps must be in \(0, 1\], not 0/);

  // keepReadingHead: the whole model's reading head (the decoder's width, here the ConvNeXt's last) comes back as
  // stage 0 trained it, the ConvNeXt as without it; a head of another shape, or none, is refused.
  const settings = { seed: 5, steps: 2, sheets: 1, codes: 20, crops: 2, crop: 64, lr: 1e-3, warmup: 1, ease: 1, easeSteps: 2, threads: 1 };
  const withHead = freshTensors(new Map([...model.specs, ...readingHeadSpecs(TINY.llm.width)]), 5);
  const { source: kept } = await pretrainConvnext(model, withHead, { ...settings, keepReadingHead: true });
  const { source: dropped } = await pretrainConvnext(model, withHead, settings);
  const head = `${READING_HEAD}.weight`;
  assert.ok(maxAbsDiff(await kept.readFloat32(head), await withHead.readFloat32(head)) > 0, 'the head is stage 0\'s');
  assert.equal(maxAbsDiff(await dropped.readFloat32(head), await withHead.readFloat32(head)), 0, 'without it, the head stays fresh');
  for (const name of model.specs.keys()) assert.equal(maxAbsDiff(await kept.readFloat32(name), await dropped.readFloat32(name)), 0, name);
  await assert.rejects(pretrainConvnext(model, freshTensors(new Map([...model.specs, ...blockedReadingHeadSpecs(TINY.llm.width)]), 5), { ...settings, keepReadingHead: true }), /does not fit the whole model's/);
  await assert.rejects(pretrainConvnext(model, fresh, { ...settings, keepReadingHead: true }), /keepReadingHead: the whole model has no reading head/);
});

test('stage 0\'s reading check: a head that names sample 0\'s code in every cell reads it whole, and of the others what they share with it', async () => {
  const model = labLlavaHrModel({ ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } });
  const fresh = freshTensors(model.specs, 5);
  const classes = CODE_ALPHABET.length + 1;
  const codes = await Promise.all([0, 1, 2, 3].map(async (i) => (await renderSmallPrint(9, i)).code));
  const bias = new Float32Array(READING_SLOTS * classes).fill(-1);
  [...codes[0]!].forEach((ch, k) => (bias[k * classes + CODE_ALPHABET.indexOf(ch)] = 1));
  const weights = new MemorySource({
    ...Object.fromEntries(await Promise.all([...model.specs.keys()].filter((n) => n.startsWith(`${model.convnext!.prefix}.`))
      .map(async (n) => [n, { shape: fresh.info(n).shape, data: Float32Array.from(await fresh.readFloat32(n)) }] as const))),
    [`${READING_HEAD}.weight`]: { shape: [READING_SLOTS * classes, 32], data: new Float32Array(READING_SLOTS * classes * 32) },
    [`${READING_HEAD}.bias`]: { shape: [READING_SLOTS * classes], data: bias },
  });
  const ceiling = await readingCeiling(model, weights, { seed: 9, count: 4 }, 1);
  const same = codes.map((code) => [...code].filter((ch, k) => codes[0]![k] === ch).length);
  const total = codes.reduce((n, code) => n + code.length, 0);
  assert.equal(ceiling.characters, same.reduce((a, b) => a + b, 0) / total);
  assert.equal(ceiling.codes, codes.filter((code) => code === codes[0]).length / 4);
  assert.ok(Math.abs(ceiling.byCapHeight.reduce((n, s) => n + s.share * s.characters, 0) - same.reduce((a, b) => a + b, 0)) < 1e-9);
});

test('readInPlace: slot k of the k-th character\'s cell must name it; a character outside the grid is not read', () => {
  const classes = CODE_ALPHABET.length + 1;
  const logits = new Float32Array(2 * READING_SLOTS * classes);
  logits[(0 * READING_SLOTS + 0) * classes + CODE_ALPHABET.indexOf('A')] = 2;
  logits[(1 * READING_SLOTS + 1) * classes + CODE_ALPHABET.indexOf('C')] = 2;
  logits[(1 * READING_SLOTS + 0) * classes + CODE_ALPHABET.indexOf('B')] = 3; // B in the wrong slot
  assert.deepEqual(readInPlace(logits, [0, 1, -1], 'AB7'), [true, false, false]);
  assert.deepEqual(readInPlace(logits, [0, 1], 'AC'), [true, true]);
});

test('the reading head: character and blank cross-entropies apart, and the share of characters it reads right', async () => {
  // Width 1, cells of value 1: a slot's logits are its bias, so each slot's class and loss are known by hand.
  const classes = NO_CHARACTER + 1;
  const bias = new Float32Array(READING_SLOTS * classes);
  const favoured = [3, 3, NO_CHARACTER, 7, 0, 0];
  favoured.forEach((c, slot) => (bias[slot * classes + c] = 4));
  const source = new MemorySource({
    [`${READING_HEAD}.weight`]: { shape: [READING_SLOTS * classes, 1], data: new Float32Array(READING_SLOTS * classes) },
    [`${READING_HEAD}.bias`]: { shape: [READING_SLOTS * classes], data: bias },
  });
  const g = new Graph('reading-head');
  const cells = g.input('cells', 'float32', [1, 1, 1]);
  const head = readingHeadLoss(g, source, cells);
  g.output(head.characters, 'characters');
  g.output(head.blanks, 'blanks');
  g.output(head.accuracy, 'accuracy');
  const session = await Session.fromGraph(g, { threads: 1 });
  // Slots 0 and 3 right, 1 wrong; slot 2 a blank read as a blank, slot 4 a blank read as a character; slot 5 ignored.
  const targets = [3, 9, NO_CHARACTER, 7, NO_CHARACTER, IGNORE];
  const out = await session.run({
    cells: new ort.Tensor('float32', new Float32Array([1]), [1, 1, 1]),
    reading_targets: new ort.Tensor('int64', BigInt64Array.from(targets.map(BigInt)), [1, 1, READING_SLOTS]),
  });
  await session.dispose();
  const logZ = Math.log(Math.exp(4) + classes - 1);
  const scalarOf = (name: string) => (out[name]!.data as Float32Array)[0]!;
  assert.ok(Math.abs(scalarOf('characters') - ((logZ - 4) * 2 + logZ) / 3) < 1e-5);
  assert.ok(Math.abs(scalarOf('blanks') - ((logZ - 4) + logZ) / 2) < 1e-5);
  assert.ok(Math.abs(scalarOf('accuracy') - 2 / 3) < 1e-6);
});

test('the blocked reading head: slot k\'s logits are block k of the cell times its own weights, plus its bias', async () => {
  const classes = NO_CHARACTER + 1;
  const width = 2 * READING_SLOTS + 1; // blocks of 2; the last dimension belongs to no block
  const specs = blockedReadingHeadSpecs(width);
  assert.deepEqual(specs.get(`${READING_HEAD}.weight`)!.shape, [READING_SLOTS, 2, classes]);
  const source = freshTensors(specs, 5);
  const [weight, bias] = [await source.readFloat32(`${READING_HEAD}.weight`), Float32Array.from({ length: READING_SLOTS * classes }, (_, i) => i / 100)];
  const g = new Graph('blocked-head');
  const head = new MemorySource({ [`${READING_HEAD}.weight`]: { shape: [READING_SLOTS, 2, classes], data: weight }, [`${READING_HEAD}.bias`]: { shape: [READING_SLOTS, classes], data: bias } });
  g.output(readingHeadLogits(g, head, g.input('cells', 'float32', [1, 2, width])), 'logits');
  const session = await Session.fromGraph(g, { threads: 1 });
  const cells = Float32Array.from({ length: 2 * width }, (_, i) => Math.sin(i + 1));
  const out = (await session.run({ cells: new ort.Tensor('float32', cells, [1, 2, width]) }))['logits']!;
  await session.dispose();
  assert.deepEqual(out.dims, [1, 2, READING_SLOTS, classes]);
  const logits = out.data as Float32Array;
  let worst = 0;
  for (let c = 0; c < 2; c++) for (let k = 0; k < READING_SLOTS; k++) for (let j = 0; j < classes; j++) {
    let expected = bias[k * classes + j]!;
    for (let d = 0; d < 2; d++) expected += cells[c * width + 2 * k + d]! * weight[(k * 2 + d) * classes + j]!;
    worst = Math.max(worst, Math.abs(logits[(c * READING_SLOTS + k) * classes + j]! - expected));
  }
  assert.ok(worst < 1e-6, `max |Δ| ${worst}`);
});

test('the visual tokens\' scale aid: the mean over tokens of (mean square / rms² − 1)²', async () => {
  const g = new Graph('scale-aid');
  g.output(visualScaleLoss(g.input('visual', 'float32', [1, 2, 2]), 0.5), 'loss');
  const session = await Session.fromGraph(g, { threads: 1 });
  const out = await session.run({ visual: new ort.Tensor('float32', new Float32Array([0.5, 0.5, 1, 0]), [1, 2, 2]) });
  await session.dispose();
  // Token 0's mean square is 0.25 (on target), token 1's 0.5 (twice it): (0 + 1) / 2.
  assert.ok(Math.abs((out['loss']!.data as Float32Array)[0]! - 0.5) < 1e-6);
});

test('unblockReadingHead: the full head it makes gives the blocked head\'s logits', async () => {
  const classes = NO_CHARACTER + 1;
  const width = 3 * READING_SLOTS + 2; // blocks of 3; the last two dimensions belong to no block
  const blocked = freshTensors(blockedReadingHeadSpecs(width), 7);
  const [weight, bias] = [await blocked.readFloat32(`${READING_HEAD}.weight`), Float32Array.from({ length: READING_SLOTS * classes }, (_, i) => Math.cos(i))];
  const full = unblockReadingHead(weight, bias, width);
  const g = new Graph('unblocked-head');
  const cells = g.input('cells', 'float32', [1, 2, width]);
  const heads = new MemorySource({
    'blocked.weight': { shape: [READING_SLOTS, 3, classes], data: weight }, 'blocked.bias': { shape: [READING_SLOTS, classes], data: bias },
    'full.weight': { shape: [READING_SLOTS * classes, width], data: full.weight }, 'full.bias': { shape: [READING_SLOTS * classes], data: full.bias },
  });
  g.output(readingHeadLogits(g, heads, cells, 'blocked'), 'blocked');
  g.output(readingHeadLogits(g, heads, cells, 'full'), 'full');
  const session = await Session.fromGraph(g, { threads: 1 });
  const out = await session.run({ cells: new ort.Tensor('float32', Float32Array.from({ length: 2 * width }, (_, i) => Math.sin(i + 1)), [1, 2, width]) });
  await session.dispose();
  const d = maxAbsDiff(out['blocked']!.data as Float32Array, out['full']!.data as Float32Array);
  assert.ok(d < 1e-6, `max |Δ| ${d}`);
});

test('stage 1: the token path learns alone on the ConvNeXt\'s maps; the whole model\'s visual tokens are then that path\'s, the ViT\'s share at zero', async () => {
  const model = labLlavaHrModel({ ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } });
  const fresh = freshTensors(new Map([...model.specs, ...readingHeadSpecs(TINY.llm.width)]), 5);
  const reading: number[] = [];
  const scale: number[] = [];
  // One sheet, many steps at a high rate: the head learns its characters.
  const settings = { seed: 5, rms: 0.5, sheets: 1, codes: 10, blanks: 4, check: 2, steps: 30, batch: 2, lr: 1e-2, warmup: 1, threads: 1 };
  const logs: string[] = [];
  const { source } = await pretrainTokenPath(model, fresh, { ...settings, log: (m) => logs.push(m), onStep: (r) => (reading.push(r.reading), scale.push(r.scale)) });
  // Two held-out images checked after training.
  const share = logs.map((m) => /reads ([\d.]+) % of the characters of 2 held-out images/.exec(m)).find(Boolean);
  assert.ok(share && Number(share[1]) >= 0 && Number(share[1]) <= 100, logs.join('\n'));
  assert.equal(reading.length, 30);
  assert.ok(reading.at(-1)! < reading[0]! - 1, `reading losses ${reading[0]} → ${reading.at(-1)}`);
  assert.ok(scale.at(-1)! < scale[0]!, `scale losses ${scale[0]} → ${scale.at(-1)}`);
  const trained = /^model\.(vision_tower\.align_stages\.0\.slow_proj|mm_projector)\.|^lab_reading_head\./;
  for (const name of fresh.list().map((t) => t.name)) {
    const [mine, theirs] = [await source.readFloat32(name), await fresh.readFloat32(name)];
    if (/align_stages\.0\.fast_proj\./.test(name)) assert.ok(mine.every((x) => x === 0), `${name} is not zero`);
    else if (trained.test(name)) assert.ok(maxAbsDiff(mine, theirs) > 0, `${name} did not train`);
    else assert.equal(maxAbsDiff(mine, theirs), 0, `${name} changed`);
  }
  // The full head handed on is blocked: slot k reads only block k of the token.
  const block = Math.floor(TINY.llm.width / READING_SLOTS);
  const head = await source.readFloat32(`${READING_HEAD}.weight`);
  for (let row = 0; row < head.length / TINY.llm.width; row++) {
    const k = Math.floor(row / (NO_CHARACTER + 1));
    for (let j = 0; j < TINY.llm.width; j++) if (j < k * block || j >= (k + 1) * block) assert.equal(head[row * TINY.llm.width + j], 0, `row ${row}, dimension ${j}`);
  }
  // The model's own vision graph on an image gives the tokens of stage 1's path (slow_proj, projector) on its ConvNeXt map.
  const run = async (g: Graph, feeds: Record<string, ort.Tensor>) => {
    const session = await Session.fromGraph(g, { threads: 1 });
    try {
      return await session.run(feeds);
    } finally {
      await session.dispose();
    }
  };
  const g = new Graph('whole-vision');
  const whole = buildMultipathVision(new WeightScope(g, source, '', identityLayout), llavaHrConfig(model.configJson, 'the tiny lab LLaVA-HR'), g.input('pixel_values', 'float32', [1, 3, 128, 128]));
  g.output(whole.visualTokens, 'tokens');
  g.output(mapToTokens(whole.convnextStages.at(-1)!), 'map');
  const out = await run(g, { pixel_values: new ort.Tensor('float32', model.preprocess(await loadImage(IMAGE)), [1, 3, 128, 128]) });
  const p = new Graph('token-path');
  const scope = new WeightScope(p, source, '', identityLayout);
  const fused = linear(scope.at('model.vision_tower.align_stages.0'), 'slow_proj.weight', p.input('map', 'float32', out['map']!.dims), 'fp32', 'slow_proj.bias');
  p.output(projectVisual(scope.at('model.mm_projector'), fused), 'tokens');
  const path = await run(p, { map: out['map']! });
  const d = maxAbsDiff(out['tokens']!.data as Float32Array, path['tokens']!.data as Float32Array);
  assert.ok(d < 1e-5, `max |Δ| ${d}`);
  // With vectors, the tokens are told to be the read-out probe's synthetic ones for the cells' targets: the error falls.
  // The held-out check then also says how the tokens mark the code's cells.
  const errors: number[] = [];
  const vectorLogs: string[] = [];
  await pretrainTokenPath(model, fresh, { ...settings, vectors: 0.5, log: (m) => vectorLogs.push(m), onStep: (r) => errors.push(r.vectors!) });
  assert.ok(errors.length === 30 && errors.every(Number.isFinite) && errors.at(-1)! < errors[0]! / 2, `vector errors ${errors[0]} → ${errors.at(-1)}`);
  const marked = vectorLogs.map((m) => /the code's cells rank ([\d.]+) of 16 on average and an image's first cell is the code's in (\d+) % of them/.exec(m)).find(Boolean);
  assert.ok(marked && Number(marked[1]) < 16 && Number(marked[2]) <= 100, vectorLogs.join('\n'));
  // The whole model's head must be a full one on the decoder's width.
  await assert.rejects(pretrainTokenPath(model, freshTensors(model.specs, 5), settings), /stage 1 hands the whole model a full reading head \[222×32\]; it has none/);
  await assert.rejects(pretrainTokenPath(model, freshTensors(new Map([...model.specs, ...blockedReadingHeadSpecs(TINY.llm.width)]), 5), settings), /it has \[6×5×37\]/);
});

test('markerRanks: cells ranked by their projection on the marker, less the blank vector', () => {
  const vectors = readoutVectors(12, 1, { std: 0.5, blocks: true });
  const tokens = new Float32Array(5 * 12);
  for (let c = 0; c < 5; c++) tokens.set(vectors.blank, c * 12);
  const add = (cell: number, share: number) => vectors.marker.forEach((m, d) => (tokens[cell * 12 + d] += share * m));
  add(3, 1);
  add(1, 0.5);
  add(4, 0.8);
  assert.deepEqual(markerRanks(tokens, vectors, (c) => c === 1 || c === 3), { ranks: [0, 2], topIsCode: true });
  assert.deepEqual(markerRanks(tokens, vectors, (c) => c === 4), { ranks: [1], topIsCode: false });
});

test('the answer\'s code characters are one token each, found where the attention aid expects them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-lab-tok-'));
  try {
    await writeFile(join(dir, 'tokenizer.model'), labTokenizerModel(0, 200, 512));
    const tokenizer = await loadTokenizer(dir);
    for (const [code, short] of [['JOSRU', true], ['02VT3A', false], ['AAAA', true]] as const) {
      const e = smallPrintExample(tokenizer, 'What is the code?', code, short);
      assert.deepEqual(e.codeAt.map((j) => tokenizer.decode([e.after[j]!]).trim()).join(''), code);
      assert.equal(e.after.at(-1), tokenizer.eosId);
      assert.ok(e.codeAt[0]! >= e.answerAt);
      // Row r predicts token r + 1: the answer's rows, or the first character's alone; the aid's row for each character.
      const offset = e.before.length + 16;
      const rows = answerRows(e, offset, false);
      assert.deepEqual(rows.targets.map((t) => t.token), e.after.slice(e.answerAt));
      assert.deepEqual(rows.targets.map((t) => t.row), e.after.slice(e.answerAt).map((_, i) => offset + e.answerAt + i - 1));
      assert.deepEqual(rows.code, [...code].map((_, k) => ({ k, row: offset + e.codeAt[k]! - 1 })));
      const first = answerRows(e, offset, true);
      assert.deepEqual(first.targets, [{ row: offset + e.codeAt[0]! - 1, token: e.after[e.codeAt[0]!]! }]);
      assert.equal(tokenizer.decode([first.targets[0]!.token]).trim(), code[0]);
      assert.deepEqual(first.code, rows.code);
    }
    // The aids' targets for a batch of two: at the row that predicts character k, head k mod 2 looks at the
    // character's cell (visual token 3 + k, after the text before the image), the other head at <s> (sink), and the
    // position aid is told k; every other row and head is ignored.
    const examples = [smallPrintExample(tokenizer, 'What is the code?', 'JOSRU', true), smallPrintExample(tokenizer, 'What is the code?', '02VT3A', false)];
    const visual = 16;
    const feeds = answerFeeds(examples, visual, false, { heads: 2, cell: (b, k) => (b === 1 && k === 5 ? -1 : 3 + k), sink: true }, true);
    const [B, heads, seq] = feeds['attention_targets']!.dims as number[];
    assert.deepEqual([B, heads], [2, 2]);
    const look = feeds['attention_targets']!.data as BigInt64Array;
    const place = feeds['position_targets']!.data as BigInt64Array;
    const before = examples[0]!.before.length;
    examples.forEach((e, b) => {
      const code = new Map(answerRows(e, before + visual, false).code.map(({ k, row }) => [row, k]));
      for (let row = 0; row < seq!; row++) {
        const k = code.get(row);
        assert.equal(place[b * seq! + row], BigInt(k ?? -100), `example ${b}, row ${row}: position`);
        for (let h = 0; h < 2; h++) {
          const expected = k === undefined || (b === 1 && k === 5) ? -100 : h === k % 2 ? before + 3 + k : 0;
          assert.equal(look[(b * 2 + h) * seq! + row], BigInt(expected), `example ${b}, row ${row}, head ${h}`);
        }
      }
    });
    assert.equal(answerFeeds(examples, visual, false, { heads: 2, cell: () => 0 })['position_targets'], undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cell targets of a crop: a cell holding several characters names each in its own slot', () => {
  const centres = [{ index: 0, x: 40, y: 40 }, { index: 1, x: 50, y: 45 }, { index: 2, x: 70, y: 40 }, { index: 3, x: 500, y: 40 }];
  // A 64-px crop at (32, 32) in cells of 32: (40, 40) and (50, 45) share cell (0, 0), (70, 40) is in cell (1, 0),
  // (500, 40) outside; cell 2 is the stride's blank one, cell 3 ignored.
  const targets = cellTargets([centres], 32, 32, 64, 32, 2);
  const n = NO_CHARACTER;
  assert.deepEqual([...targets], [
    [0, 1, n, n, n, n],
    [n, n, 2, n, n, n],
    [n, n, n, n, n, n],
    [-100, -100, -100, -100, -100, -100],
  ].flat());
});

test('cell and glyph targets with word boxes: every cell a word covers says no character, and the glyph head leaves those cells out', () => {
  const n = NO_CHARACTER;
  const code = [{ index: 0, x: 40, y: 40 }];
  // A word's ink from (70, 60) to (110, 70) in a 64-px crop at (32, 32) of 32-px cells covers cells (1, 0) and (1, 1);
  // another word lies outside the crop. Blank stride 4: cell 0 would be the blank one, and holds the code.
  const words = [{ x: 70, y: 60, width: 40, height: 10 }, { x: 300, y: 300, width: 40, height: 10 }];
  const targets = cellTargets([code], 32, 32, 64, 32, 4, words);
  assert.deepEqual([...targets], [[0, n, n, n, n, n], new Array(READING_SLOTS).fill(n), new Array(READING_SLOTS).fill(IGNORE), new Array(READING_SLOTS).fill(n)].flat());
  assert.deepEqual([...cellTargets([code], 32, 32, 64, 32, 4)].slice(READING_SLOTS), [...new Array(READING_SLOTS).fill(IGNORE), ...new Array(READING_SLOTS).fill(IGNORE), ...new Array(READING_SLOTS).fill(IGNORE)]);
  // Glyph cells of 16 px (4 × 4, every even cell a blank one): the word covers columns 2–3 of rows 1–2.
  const glyphs = glyphTargets([code], 32, 32, 64, 16, 2, words);
  const slots = (cell: number) => [...glyphs.subarray(cell * READING_SLOTS, (cell + 1) * READING_SLOTS)];
  assert.deepEqual(slots(0), [0, n, n, n, n, n]);
  for (const cell of [6, 7, 10, 11]) assert.deepEqual(slots(cell), new Array(READING_SLOTS).fill(IGNORE), `cell ${cell}`);
  for (const cell of [2, 4, 14]) assert.deepEqual(slots(cell), new Array(READING_SLOTS).fill(n), `cell ${cell}`);
});

test('stage 1\'s synthetic token targets: blank, marker and place vectors; told cells weigh alike, or code and blank cells half each', () => {
  const vectors = readoutVectors(12, 5, { std: 0.5, blocks: true });
  const n = BigInt(NO_CHARACTER);
  const ignored = BigInt(IGNORE);
  // Four cells: the code's 'C' in place 1, two blank cells, one ignored.
  const slots = [[n, 2n, n, n, n, n], [n, n, n, n, n, n], new Array(READING_SLOTS).fill(ignored), [n, n, n, n, n, n]];
  const targets = BigInt64Array.from(slots.flat());
  const plain = tokenTargets(vectors, targets, 1, 4);
  assert.deepEqual([...(plain['token_told']!.data as Float32Array)], [1, 1, 0, 1]);
  const apart = tokenTargets(vectors, targets, 1, 4, true);
  assert.deepEqual([...(apart['token_told']!.data as Float32Array)], [0.5, 0.25, 0, 0.25]);
  const tokens = plain['token_targets']!.data as Float32Array;
  assert.deepEqual([...tokens.subarray(0, 12)], Array.from(vectors.blank, (b, d) => Math.fround(Math.fround(b + vectors.slots[1]![2]![d]!) + vectors.marker[d]!)));
  assert.deepEqual([...tokens.subarray(12, 24)], [...vectors.blank].map(Math.fround));
  assert.deepEqual([...tokens.subarray(24, 36)], new Array(12).fill(0));
});

test('cells read as characters: the cells where some slot\'s top class is a character', () => {
  const classes = NO_CHARACTER + 1;
  const logits = new Float32Array(3 * READING_SLOTS * classes);
  for (let j = 0; j < 3 * READING_SLOTS; j++) logits[j * classes + NO_CHARACTER] = 1;
  logits[(2 * READING_SLOTS + 4) * classes + 7] = 2;
  assert.deepEqual(cellsReadAsCharacters(logits, 3), [2]);
});

test('an MRA training stopped part-way (in stage 0, then in the whole model, with its ConvNeXt frozen or not) resumes from its saved state to the weights of the run never stopped', async () => {
  const model = labLlavaHrModel({ ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } });
  const root = await mkdtemp(join(tmpdir(), 'egret-lab-resume-'));
  try {
    const tokenizerModel = labTokenizerModel(0, 40, 400);
    // Two sheets (one rendered over every three steps) and two task images, so that the resumed pools must be the ones the
    // whole run held at that step.
    const pretrain = { steps: 5, sheets: 2, renderEvery: 3, codes: 20, crops: 4, crop: 64, lr: 1e-3, warmup: 1, ease: 1, easeSteps: 10, tasks: { crops: 1, images: 2 } };
    const settings = { seed: 3, steps: 5, batchSize: 1, lr: 1e-3, warmup: 1, threads: 1, reading: 1, attention: 1, pretrain, saveEvery: 2 };
    const whole = join(root, 'whole');
    await trainLabModel(whole, model, tokenizerModel, { ...settings, stateDir: join(whole, 'resume') });

    // A kill is an exception here: thrown at stage 0's step 4 (state saved at 2), then at the whole model's step 5 (saved at 4).
    const stopped = join(root, 'stopped');
    const stopAt = (at: number) => (r: { step: number }) => {
      if (r.step === at) throw new Error(`stopped at ${at}`);
    };
    const stages: number[][] = [[], []];
    const resumeOpts = { ...settings, stateDir: join(stopped, 'resume') };
    await assert.rejects(trainLabModel(stopped, model, tokenizerModel, { ...resumeOpts, onPretrainStep: stopAt(4) }), /stopped at 4/);
    await assert.rejects(trainLabModel(stopped, model, tokenizerModel, {
      ...resumeOpts, onPretrainStep: (r) => stages[0]!.push(r.step), onStep: (r) => (stages[1]!.push(r.step), stopAt(5)(r)),
    }), /stopped at 5/);
    assert.deepEqual(stages, [[3, 4, 5], [1, 2, 3, 4, 5]]);
    stages[0] = [];
    stages[1] = [];
    const { seconds } = await trainLabModel(stopped, model, tokenizerModel, { ...resumeOpts, onPretrainStep: (r) => stages[0]!.push(r.step), onStep: (r) => stages[1]!.push(r.step) });
    assert.deepEqual(stages, [[], [5]], 'stage 0 is not run again once the whole model has a saved state');
    assert.ok(seconds > 0);

    const sameWeights = async (x: string, y: string) => {
      const [a, b] = [await openCheckpoint(join(x, 'pytorch_model.bin')), await openCheckpoint(join(y, 'pytorch_model.bin'))];
      for (const name of model.specs.keys()) assert.equal(maxAbsDiff(await b.readFloat32(name), await a.readFloat32(name)), 0, name);
      await Promise.all([a.close(), b.close()]);
    };
    await sameWeights(whole, stopped);

    // What the whole model leaves frozen is not in the trainer's state: it is kept beside it, so that a resumed run
    // trains around stage 0's ConvNeXt and not around fresh tensors; a state without it is refused.
    const frozen = { ...settings, freezeConvnext: true };
    const [wholeFrozen, stoppedFrozen, lost] = ['whole-frozen', 'stopped-frozen', 'lost'].map((d) => join(root, d));
    await trainLabModel(wholeFrozen, model, tokenizerModel, { ...frozen, stateDir: join(wholeFrozen, 'resume') });
    for (const dir of [stoppedFrozen, lost]) {
      await assert.rejects(trainLabModel(dir, model, tokenizerModel, { ...frozen, stateDir: join(dir, 'resume'), onStep: stopAt(5) }), /stopped at 5/);
    }
    await trainLabModel(stoppedFrozen, model, tokenizerModel, { ...frozen, stateDir: join(stoppedFrozen, 'resume') });
    await sameWeights(wholeFrozen, stoppedFrozen);
    await rm(join(lost, 'resume', 'frozen.safetensors'));
    await assert.rejects(trainLabModel(lost, model, tokenizerModel, { ...frozen, stateDir: join(lost, 'resume') }), /frozen\.safetensors is missing/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('freezeConvnext: the whole model trains around the ConvNeXt that stage 0 made, the aid on several heads; identityAdapters', async () => {
  const model = labLlavaHrModel({ ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } });
  const root = await mkdtemp(join(tmpdir(), 'egret-lab-freeze-'));
  try {
    const tokenizerModel = labTokenizerModel(0, 40, 400);
    const pretrain = { steps: 2, sheets: 1, codes: 20, crops: 2, crop: 64, lr: 1e-3, warmup: 1, ease: 1, easeSteps: 2 };
    const settings = { seed: 3, steps: 2, batchSize: 2, lr: 1e-2, warmup: 1, threads: 1, reading: 1, attention: 1, attentionHeads: 2, pretrain };
    // With a learning rate of 0 (AdamW's decay is scaled by it too) the whole model leaves every weight as stage 0 made it.
    const [frozen, still] = [join(root, 'frozen'), join(root, 'still')];
    const attention: number[] = [];
    await trainLabModel(frozen, model, tokenizerModel, { ...settings, freezeConvnext: true, onStep: (r) => attention.push(r.attention!) });
    // The aid on the first layer with the sink, the first step scoring the first character alone, the position aid on
    // layer 0 (a fresh head guesses among 6 places, and is not saved), the place crutch and the place aid (layer 0's
    // rows against the crutch's vectors: a positive mean square); a layer the decoder lacks is refused.
    // With them, the blocked reading head (a fresh one starts near ln 37) and the scale aid (a fresh projector's
    // tokens are far below an rms of 0.5: near 1).
    const early: number[] = [];
    const places: number[] = [];
    const crutch: number[] = [];
    const blocked: number[] = [];
    const scale: number[] = [];
    await trainLabModel(join(root, 'early'), model, tokenizerModel, {
      ...settings, attentionLayer: 0, attentionSink: true, firstCharacterSteps: 1, positionAid: 1, positionLayer: 0, placeCrutchUntil: 2, placeAid: 1,
      readingBlocks: true, visualRms: 0.5,
      onStep: (r) => (early.push(r.attention!), places.push(r.position!), crutch.push(r.place!), blocked.push(r.reading!), scale.push(r.scale!)),
    });
    assert.ok(blocked.length === 2 && blocked.every((x) => Math.abs(x - Math.log(37)) < 0.5), `blocked reading losses ${blocked}`);
    assert.ok(scale.length === 2 && scale.every((x) => x > 0.5 && x <= 1), `scale losses ${scale}`);
    assert.ok(early.length === 2 && early.every((x) => Number.isFinite(x) && x > Math.log(50)), `attention losses ${early}`);
    assert.ok(places.length === 2 && places.every((x) => Math.abs(x - Math.log(6)) < 0.5), `position losses ${places}`);
    assert.ok(crutch.length === 2 && crutch.every((x) => Number.isFinite(x) && x > 0 && x < 1), `place losses ${crutch}`);
    // The crutch reaches the decoder's input: handed the place at step 1, the rows are nearer to it than without.
    const bare: number[] = [];
    await trainLabModel(join(root, 'bare'), model, tokenizerModel, {
      ...settings, attentionLayer: 0, attentionSink: true, firstCharacterSteps: 1, positionAid: 1, positionLayer: 0, placeAid: 1,
      onStep: (r) => bare.push(r.place!),
    });
    assert.ok(crutch[0]! < bare[0]!, `place loss ${crutch[0]} with the crutch, ${bare[0]} without`);
    const saved = await openCheckpoint(join(root, 'early', 'pytorch_model.bin'));
    assert.deepEqual(saved.list().map((t) => t.name).sort(), [...model.specs.keys()].sort());
    await saved.close();
    await assert.rejects(trainLabModel(join(root, 'none'), model, tokenizerModel, { ...settings, positionAid: 1, positionLayer: 2 }), /positionLayer 2: the decoder has 2 layers/);
    await assert.rejects(trainLabModel(join(root, 'none'), model, tokenizerModel, { ...settings, attentionLayer: TINY.llm.layers }), /attentionLayer 2: the decoder has 2 layers/);
    await trainLabModel(still, model, tokenizerModel, { ...settings, lr: 0 });
    assert.ok(attention.every((x) => Number.isFinite(x) && x > Math.log(50)), `attention losses ${attention}`);
    const [a, b] = [await openCheckpoint(join(frozen, 'pytorch_model.bin')), await openCheckpoint(join(still, 'pytorch_model.bin'))];
    const convnext = [...model.specs.keys()].filter((n) => n.startsWith(`${model.convnext!.prefix}.`));
    assert.ok(convnext.length > 10);
    for (const name of convnext) assert.equal(maxAbsDiff(await a.readFloat32(name), await b.readFloat32(name)), 0, name);
    const projector = [...model.specs.keys()].find((n) => n.includes('mm_projector'))!;
    assert.ok(maxAbsDiff(await a.readFloat32(projector), await b.readFloat32(projector)) > 0, 'the rest trains');

    // identityAdapters: the adapters' output projections start at zero, and every other tensor as it would have.
    const identity = join(root, 'identity');
    await trainLabModel(identity, model, tokenizerModel, { ...settings, lr: 0, identityAdapters: true });
    const c = await openCheckpoint(join(identity, 'pytorch_model.bin'));
    const zeroed = model.adapterProjections!;
    assert.equal(zeroed.length, 6);
    for (const name of model.specs.keys()) {
      const [mine, theirs] = [await c.readFloat32(name), await b.readFloat32(name)];
      if (zeroed.includes(name)) assert.ok(mine.every((x) => x === 0) && theirs.some((x) => x !== 0), name);
      else assert.equal(maxAbsDiff(mine, theirs), 0, name);
    }
    await Promise.all([a.close(), b.close(), c.close()]);
    await assert.rejects(trainLabModel(join(root, 'plain'), labLlavaModel(TINY), tokenizerModel, { ...settings, pretrain: undefined, freezeConvnext: true }), /needs an MRA model with stage 0/);
    await assert.rejects(trainLabModel(join(root, 'plain'), model, tokenizerModel, { ...settings, readingBlocks: true, readingFromStageZero: true }), /readingFromStageZero needs stage 0 and an unblocked reading head/);

    // tokenPath: stage 1 runs between stage 0 and the whole model, which reports its own steps after stage 1's.
    const stages: string[] = [];
    const tokenPath = { sheets: 1, codes: 10, blanks: 4, check: 0, steps: 2, batch: 1, lr: 1e-3, warmup: 1 };
    await trainLabModel(join(root, 'stage1'), model, tokenizerModel, {
      ...settings, visualRms: 0.5, tokenPath,
      onPretrainStep: (r) => stages.push(`0:${r.step}/${r.steps}`), onTokenPathStep: (r) => stages.push(`1:${r.step}/${r.steps}`), onStep: (r) => stages.push(`w:${r.step}`),
    });
    assert.deepEqual(stages, ['0:1/2', '0:2/2', '1:1/2', '1:2/2', 'w:1', 'w:2']);
    // freezeVision: the whole model leaves every tensor before the decoder as stages 0 and 1 made it (a run at rate 0
    // shows them), and trains the decoder.
    await trainLabModel(join(root, 'vision-frozen'), model, tokenizerModel, { ...settings, visualRms: 0.5, tokenPath, freezeVision: true });
    await trainLabModel(join(root, 'vision-still'), model, tokenizerModel, { ...settings, visualRms: 0.5, tokenPath, lr: 0 });
    const [moved, kept] = await Promise.all(['vision-frozen', 'vision-still'].map((d) => openCheckpoint(join(root, d, 'pytorch_model.bin'))));
    let decoderTrained = false;
    for (const name of model.specs.keys()) {
      const d = maxAbsDiff(await moved!.readFloat32(name), await kept!.readFloat32(name));
      if (model.visionPrefixes.some((prefix) => name.startsWith(prefix))) assert.equal(d, 0, name);
      else decoderTrained ||= d > 0;
    }
    assert.ok(decoderTrained, 'the decoder trains');
    // tasks: stage 1 trains on task images' maps beside the sheets', and so gives another projector.
    const logged: string[] = [];
    await trainLabModel(join(root, 'stage1-tasks'), model, tokenizerModel, { ...settings, visualRms: 0.5, tokenPath: { ...tokenPath, tasks: 2 }, lr: 0, log: (m) => logged.push(m) });
    assert.ok(logged.some((m) => /on 1 code sheets' and 2 task images' ConvNeXt maps/.test(m)), logged.join('\n'));
    const withTasks = await openCheckpoint(join(root, 'stage1-tasks', 'pytorch_model.bin'));
    assert.ok(maxAbsDiff(await withTasks.readFloat32('model.mm_projector.0.weight'), await kept!.readFloat32('model.mm_projector.0.weight')) > 0);
    await Promise.all([moved!.close(), kept!.close(), withTasks.close()]);
    await assert.rejects(trainLabModel(join(root, 'plain'), model, tokenizerModel, { ...settings, freezeVision: true }), /freezeVision needs a trained vision side/);
    // readout: stage 2 runs after stage 1 (with vectors), and the whole model starts with the decoder it trained, the
    // vision side as stage 1 left it: at rate 0 the saved decoder is trainReadout's on the same settings.
    const readout = { steps: 2, lr: 1e-2, batch: 1, attention: 1, aidLayer: 1, positionLayer: 0, givePlaceUntil: 2, placeAid: 1, noise: 0.1, firstUntil: 0 };
    const withVectors = { ...tokenPath, vectors: 0.5 };
    const order: string[] = [];
    await trainLabModel(join(root, 'stage2'), model, tokenizerModel, {
      ...settings, lr: 0, visualRms: 0.5, tokenPath: withVectors, readout,
      onTokenPathStep: (r) => order.push(`1:${r.step}`), onReadoutStep: (r) => order.push(`2:${r.step}/${r.steps}`), onStep: (r) => order.push(`w:${r.step}`),
    });
    assert.deepEqual(order, ['1:1', '1:2', '2:2/2', 'w:1', 'w:2']);
    await trainLabModel(join(root, 'stage1-vectors'), model, tokenizerModel, { ...settings, lr: 0, visualRms: 0.5, tokenPath: withVectors });
    const decoderSpecs = new Map([...model.specs].filter(([name]) => !model.visionPrefixes.some((prefix) => name.startsWith(prefix))));
    const alone = await trainReadout({ llm: model.llm, specs: decoderSpecs, tokenizer: await loadTokenizer(join(root, 'stage2')) },
      { ...readout, cells: model.visualTokens, layout: 'code', vectors: { std: 0.5, blocks: true }, seed: settings.seed, threads: 1 }, () => undefined);
    assert.deepEqual([...alone.tensors.keys()].sort(), [...decoderSpecs.keys()].sort());
    const [withStage2, withoutStage2] = await Promise.all(['stage2', 'stage1-vectors'].map((d) => openCheckpoint(join(root, d, 'pytorch_model.bin'))));
    for (const name of model.specs.keys()) {
      const mine = await withStage2!.readFloat32(name);
      if (decoderSpecs.has(name)) {
        assert.equal(maxAbsDiff(mine, alone.tensors.get(name)!), 0, name);
        assert.ok(maxAbsDiff(mine, await withoutStage2!.readFloat32(name)) > 0, `${name} is stage 2's`);
      } else {
        assert.equal(maxAbsDiff(mine, await withoutStage2!.readFloat32(name)), 0, name);
      }
    }
    await Promise.all([withStage2!.close(), withoutStage2!.close()]);
    await assert.rejects(trainLabModel(join(root, 'plain'), model, tokenizerModel, { ...settings, visualRms: 0.5, tokenPath, readout }), /readout \(stage 2\) needs stage 1 with vectors/);
    await assert.rejects(trainLabModel(join(root, 'plain'), model, tokenizerModel, { ...settings, tokenPath }), /tokenPath needs stage 0, an unblocked reading head .* and visualRms/);
    await assert.rejects(trainLabModel(join(root, 'plain'), model, tokenizerModel, { ...settings, visualRms: 0.5, readingFromStageZero: true, tokenPath }), /tokenPath needs/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
