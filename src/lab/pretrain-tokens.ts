/**
 * Stage 1 of the lab's MRA model: the path from stage 0's frozen ConvNeXt to the visual tokens learns to carry what
 * stage 0 reads, before the decoder trains on them. With the ViT's share of the final fusion at zero, a visual token
 * is a per-cell MLP of the ConvNeXt's last map (slow_proj, then the mlp2x_gelu projector), so this stage trains on
 * that map computed once for a set of stage 0's code sheets: thousands of steps in minutes, where the whole model
 * takes two seconds a step; task images it never trains on check it. A blocked reading head (reading.ts) tells the tokens to hold the code's k-th character in their k-th
 * block — the layout on which `egret lab readout`'s decoder learnt the read-out (docs/LAB.md, twelfth session) —
 * and the scale aid keeps them at the size that decoder read. Through the fused path trained with the whole model,
 * the tokens were readable only after ≈ 1000 steps, when the decoder's crutch had gone (thirteenth session).
 */
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { identityLayout, WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { copyTensors, MemorySource, replaceTensors, zeroTensors } from '../io/memory-source.js';
import { convnextStages } from '../models/convnext.js';
import { projectVisual } from '../models/llava-hr.js';
import { mapToTokens } from '../models/llava-hr/mr-adapter.js';
import { linear } from '../models/linear.js';
import { ort, Session } from '../runtime/session.js';
import { checkpointTensors, freshTensors } from '../train/scratch.js';
import { warmupCosine } from '../train/schedule.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { Trainer } from '../train/trainer.js';
import { decodeImage } from '../vision/decode.js';
import type { LabVisualModel } from './models.js';
import { LAB_OPTIMIZATION } from './optimization.js';
import { sampleRng } from './random.js';
import { codeSheetInput } from './pretrain-convnext.js';
import { blockedReadingHeadSpecs, cellTargets, NO_CHARACTER, READING_HEAD, READING_SLOTS, readingHeadLoss, readingHeadSpecs, readingTargets } from './reading.js';
import { readoutVectors, type ReadoutVectors } from './readout-vectors.js';
import { renderSmallPrint } from './smallprint.js';

export interface TokenPathPretrainSettings {
  /**
   * Code sheets (stage 0's, never eased) whose ConvNeXt maps the stage trains on: a sheet holds some 600 characters
   * where a task image holds five, and on 400 task images the path learnt them by heart (96 % of their characters,
   * 40 % of held-out images').
   */
  sheets: number;
  /** Codes asked of each sheet (renderCodeSheet). */
  codes: number;
  /**
   * Distractor words drawn among each sheet's codes (renderCodeSheet; absent: stage 0's few). A task image has 4–14
   * words in the code's font to its one code; on stage 0's sheets, a cell of print was nearly always a code, and the
   * tokens marked the task's words as code (docs/LAB.md, fifteenth session).
   */
  words?: number;
  /** One cell without a character in this many is told 'no character' (cellTargets; stage 0's crops: SHEET_BLANK_STRIDE). */
  blanks: number;
  /**
   * Task images whose maps the stage trains on beside the sheets', every cell without a code character told 'no
   * character': a sheet is square and full of codes, a task image padded to a square and full of other things, which
   * the path must learn to leave blank (docs/LAB.md, sixteenth session).
   */
  tasks?: number;
  /** Task images, held out: the share of their characters the trained path's head reads in place is logged. */
  check: number;
  /**
   * Also tell the tokens to be `egret lab readout`'s synthetic tokens for the cells' targets (squared error over
   * their variance, weight 1): a blank vector, a marker on cells holding code characters, and a vector of std
   * `vectors` in block k for the k-th character (readoutVectors with blocks) — the layout whose read-out the probe's
   * decoder learnt, where its decoder learnt nothing from characters that were a small part of the token.
   */
  vectors?: number;
  /**
   * Weigh the vector error of the cells holding code characters and of the blank cells as half each (a mean over
   * each), where a mean over every told cell lets a task image's ~1000 blanks drown its code's few cells (as the
   * reading head keeps characters and blanks apart).
   */
  vectorsApart?: boolean;
  steps: number;
  /** Sheets a step. */
  batch: number;
  lr: number;
  warmup: number;
}

export interface TokenPathPretrainOptions extends TokenPathPretrainSettings {
  seed: number;
  /** The visual tokens' root mean square (visualScaleLoss, weight 1). */
  rms: number;
  threads?: number;
  log?: (message: string) => void;
  /**
   * `reading` is the head's cross-entropy on the characters, `accuracy` the share it reads right, `vectors` the
   * tokens' squared error from the synthetic ones over their variance (with `vectors`).
   */
  onStep?: (report: { step: number; reading: number; accuracy: number; scale: number; vectors?: number; lr: number; seconds: number }) => void;
}

/** Stage 1's sheets and check images are samples of the training seed from this index on, apart from stage 0's and the whole model's. */
export const TOKEN_PATH_FIRST_SAMPLE = 10_000_000;
/** Stage 1's training task images are its samples from this index on (its check images come first). */
const TASK_IMAGES_FROM = 1_000_000;

const FUSION = 'model.vision_tower.align_stages.0';
const PROJECTOR = 'model.mm_projector';

/**
 * The visual tokens' scale aid: the mean over tokens of (their mean square / `rms`² − 1)², for `visual` [B, cells,
 * width] — relative, so that it weighs the same at any target.
 */
export function visualScaleLoss(visual: Value, rms: number): Value {
  const gap = op.sub(op.div(op.reduceMean(op.mul(visual, visual), [2], false), rms * rms), 1);
  return op.reduceMean(op.mul(gap, gap), [0, 1], false);
}

/**
 * A blocked reading head's weight [slots, block, classes] and bias [slots, classes] as the full head's [slots ·
 * classes, width] and [slots · classes]: zero outside each slot's block, so that both give the same logits.
 */
export function unblockReadingHead(weight: Float32Array, bias: Float32Array, width: number): { weight: Float32Array; bias: Float32Array } {
  const classes = bias.length / READING_SLOTS;
  const block = weight.length / (READING_SLOTS * classes);
  const full = new Float32Array(READING_SLOTS * classes * width);
  for (let k = 0; k < READING_SLOTS; k++) {
    for (let j = 0; j < block; j++) {
      for (let c = 0; c < classes; c++) full[(k * classes + c) * width + k * block + j] = weight[(k * block + j) * classes + c]!;
    }
  }
  return { weight: full, bias: Float32Array.from(bias) };
}

/**
 * Trains stage 1 on the MRA `model` whose tensors `source` holds (stage 0's ConvNeXt in them); returns a source with
 * the same tensors, where the final fusion's slow_proj, the projector and the reading head (as a full head, for the
 * whole model's training) are stage 1's and the fusion's fast_proj is zero, and the seconds it took.
 */
export async function pretrainTokenPath(model: LabVisualModel, source: TensorSource, opts: TokenPathPretrainOptions): Promise<{ source: MemorySource; seconds: number }> {
  const log = opts.log ?? (() => undefined);
  if (!model.convnext) throw new Error(`stage 1 trains an MRA model's token path; a ${model.family} model has none`);
  // Checked before the stage, not after it.
  const fullHead = readingHeadSpecs(model.llm.hidden).get(`${READING_HEAD}.weight`)!.shape;
  const theirs = source.has(`${READING_HEAD}.weight`) ? source.info(`${READING_HEAD}.weight`).shape : [];
  if (theirs.join() !== fullHead.join()) throw new Error(`stage 1 hands the whole model a full reading head [${fullHead.join('×')}]; it has ${theirs.length ? `[${theirs.join('×')}]` : 'none'}`);
  const began = performance.now();
  const cells = model.visualTokens;
  const width = model.convnext.config.dims.at(-1)!;
  const grid = Math.round(Math.sqrt(cells));
  const stride = model.size / grid;
  const taskImage = async (index: number, blankStride?: number) => {
    const sample = await renderSmallPrint(opts.seed, TOKEN_PATH_FIRST_SAMPLE + index);
    return { image: model.preprocess(await decodeImage(sample.png)), targets: readingTargets(sample, grid, blankStride) };
  };
  // The sheets, then the training task images (from TASK_IMAGES_FROM on, after the check's).
  const trainingMaps = opts.sheets + (opts.tasks ?? 0);
  const sheets = await convnextMaps(model, source, trainingMaps, opts.tasks ? 'code sheets and task images' : 'code sheets', opts, async (i) => {
    if (i >= opts.sheets) return taskImage(TASK_IMAGES_FROM + i - opts.sheets, 1);
    const sheet = await codeSheetInput(model, opts.seed, TOKEN_PATH_FIRST_SAMPLE + i, 0, opts.codes, opts.words);
    return { image: sheet.image, targets: cellTargets(sheet.codes, 0, 0, model.size, stride, opts.blanks) };
  });
  const check = await convnextMaps(model, source, opts.check, 'check images', opts, (i) => taskImage(i));
  const trainedNames = [...model.specs.keys()].filter((n) => n.startsWith(`${FUSION}.slow_proj.`) || n.startsWith(`${PROJECTOR}.`));
  const head = freshTensors(blockedReadingHeadSpecs(model.llm.hidden), opts.seed);
  const tensors = new MemorySource({ ...await copyTensors(source, trainedNames), ...await copyTensors(head) });

  const { g, reading, scale, visual } = tokenPathGraph(tensors, cells, width, opts.rms);
  g.output(reading.characters, 'reading');
  g.output(reading.accuracy, 'accuracy');
  g.output(scale, 'scale');
  let loss = op.add(op.add(reading.characters, reading.blanks), scale);
  const vectors = opts.vectors ? readoutVectors(model.llm.hidden, opts.seed, { std: opts.vectors, blocks: true }) : undefined;
  if (vectors) {
    const target = g.input('token_targets', 'float32', ['batch', cells, model.llm.hidden]);
    const told = g.input('token_told', 'float32', ['batch', cells, 1]);
    const error = op.sub(visual, target);
    const perCell = op.reduceMean(op.mul(error, error), [2], true);
    const vectorLoss = op.div(op.reduceSum(op.mul(perCell, told), [0, 1, 2], false), op.add(op.reduceSum(told, [0, 1, 2], false), 1e-6));
    const relative = op.div(vectorLoss, opts.vectors! ** 2);
    g.output(relative, 'vectors');
    loss = op.add(loss, relative);
  }
  const training = buildTrainingGraph(g, loss, { trainable: (name) => name.split('+').every((part) => tensors.has(part)), ...LAB_OPTIMIZATION });
  const trainer = await Trainer.create(training, { threads: opts.threads, metrics: ['reading', 'accuracy', 'scale', ...(vectors ? ['vectors'] : [])] });
  log(`stage 1: the token path on ${opts.sheets} code sheets' ${opts.tasks ? `and ${opts.tasks} task images' ` : ''}ConvNeXt maps, ${opts.steps} steps of ${opts.batch}`);
  const B = opts.batch;
  const perMap = cells * width;
  const perTargets = cells * READING_SLOTS;
  try {
    for (let step = 0; step < opts.steps; step++) {
      const started = performance.now();
      const rng = sampleRng(opts.seed, 'stage1-batches', step);
      const batchMaps = new Float32Array(B * perMap);
      const batchTargets = new BigInt64Array(B * perTargets);
      for (let b = 0; b < B; b++) {
        const i = Math.floor(rng.float() * trainingMaps);
        batchMaps.set(sheets.maps.subarray(i * perMap, (i + 1) * perMap), b * perMap);
        batchTargets.set(sheets.targets.subarray(i * perTargets, (i + 1) * perTargets), b * perTargets);
      }
      const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
      const result = await trainer.run({
        high: new ort.Tensor('float32', batchMaps, [B, cells, width]),
        reading_targets: new ort.Tensor('int64', batchTargets, [B, cells, READING_SLOTS]),
        ...(vectors ? tokenTargets(vectors, batchTargets, B, cells, opts.vectorsApart) : {}),
      }, lr);
      const m = result.metrics;
      opts.onStep?.({ step: step + 1, reading: m['reading']!, accuracy: m['accuracy']!, scale: m['scale']!, vectors: m['vectors'], lr, seconds: (performance.now() - started) / 1000 });
    }
    const trained = checkpointTensors(g, new Map(trainer.tensors.map((t) => [t.name, Float32Array.from(trainer.param(t.name) as Float32Array)])), (n) => tensors.info(n).shape);
    if (opts.check) {
      const { share, marker } = await heldOutReading(new MemorySource(Object.fromEntries([...trained].map(([n, data]) => [n, { shape: tensors.info(n).shape, data }]))),
        check.maps, check.targets, vectors, { cells, width, rms: opts.rms, threads: opts.threads });
      const marked = marker ? `; by the marker, the code's cells rank ${marker.meanRank.toFixed(1)} of ${cells} on average and an image's first cell is the code's in ${(100 * marker.topIsCode).toFixed(0)} % of them` : '';
      log(`stage 1: its head reads ${(100 * share).toFixed(1)} % of the characters of ${opts.check} held-out images in place${marked}`);
    }
    const full = unblockReadingHead(trained.get(`${READING_HEAD}.weight`)!, trained.get(`${READING_HEAD}.bias`)!, model.llm.hidden);
    const withStage1 = await replaceTensors(source, new Map([
      ...trainedNames.map((n) => [n, trained.get(n)!] as const),
      [`${READING_HEAD}.weight`, full.weight], [`${READING_HEAD}.bias`, full.bias],
    ]));
    return { source: await zeroTensors(withStage1, [`${FUSION}.fast_proj.weight`, `${FUSION}.fast_proj.bias`]), seconds: (performance.now() - began) / 1000 };
  } finally {
    await trainer.dispose();
  }
}

/**
 * Stage 1's graph on the input `high` [B, cells, width] (the ConvNeXt's map as tokens) with the weights in `tensors`:
 * the final fusion with its fast_proj at zero (mraFusion: slow_proj of the map, already on the ViT's grid), the
 * projector, the blocked reading head's losses on the input `reading_targets`, and the scale aid.
 */
function tokenPathGraph(tensors: TensorSource, cells: number, width: number, rms: number): { g: Graph; reading: ReturnType<typeof readingHeadLoss>; scale: Value; visual: Value } {
  const g = new Graph('token-path');
  const high = g.input('high', 'float32', ['batch', cells, width]);
  const scope = new WeightScope(g, tensors, '', identityLayout);
  const visual = projectVisual(scope.at(PROJECTOR), linear(scope.at(FUSION), 'slow_proj.weight', high, 'fp32', 'slow_proj.bias'));
  return { g, reading: readingHeadLoss(g, tensors, visual), scale: visualScaleLoss(visual, rms), visual };
}

/**
 * The synthetic tokens (readout-probe.ts's layout) for reading targets [B, cells, READING_SLOTS]: token_targets [B,
 * cells, width] and token_told [B, cells, 1], 1 where a cell has targets (a code character or 'no character'), or
 * `apart`, 1/2 over the code cells' count and the blank ones' (the loss divides by the sum: each kind then weighs half).
 */
export function tokenTargets(vectors: ReadoutVectors, targets: BigInt64Array, B: number, cells: number, apart = false): Record<string, ort.Tensor> {
  const width = vectors.blank.length;
  const out = new Float32Array(B * cells * width);
  const told = new Float32Array(B * cells);
  const isCode = new Uint8Array(B * cells);
  for (let c = 0; c < B * cells; c++) {
    const slots = targets.subarray(c * READING_SLOTS, (c + 1) * READING_SLOTS);
    if (slots.every((t) => t < 0n)) continue;
    told[c] = 1;
    const row = out.subarray(c * width, (c + 1) * width);
    row.set(vectors.blank);
    let code = false;
    slots.forEach((t, k) => {
      if (t < 0n || t >= BigInt(NO_CHARACTER)) return;
      code = true;
      const v = vectors.slots[k]![Number(t)]!;
      for (let d = 0; d < width; d++) row[d]! += v[d]!;
    });
    if (code) for (let d = 0; d < width; d++) row[d]! += vectors.marker[d]!;
    isCode[c] = code ? 1 : 0;
  }
  if (apart) {
    const codeCells = isCode.reduce((n, x) => n + x, 0);
    const blankCells = told.reduce((n, x) => n + x, 0) - codeCells;
    for (let c = 0; c < B * cells; c++) {
      if (told[c]) told[c] = isCode[c] ? 0.5 / codeCells : 0.5 / blankCells;
    }
  }
  return { token_targets: new ort.Tensor('float32', out, [B, cells, width]), token_told: new ort.Tensor('float32', told, [B, cells, 1]) };
}

/** How stage 1's path reads held-out images: the share of their characters its head reads in place, and with `vectors`, how its tokens mark the code's cells. */
interface HeldOutReading {
  share: number;
  /**
   * Each cell scored by its token's projection on the synthetic marker (less the blank vector): the code cells' mean
   * rank among an image's cells (0: the highest) and the share of images whose highest cell holds a code character —
   * what a read-out that keys on the marker has to go on.
   */
  marker?: { meanRank: number; topIsCode: number };
}

/**
 * One image's `tokens` [cells, width] scored by their projection on the synthetic marker, less the blank vector: the
 * rank of each cell that `isCode` (0: the highest score) and whether the highest is one of them.
 */
export function markerRanks(tokens: Float32Array, vectors: ReadoutVectors, isCode: (cell: number) => boolean): { ranks: number[]; topIsCode: boolean } {
  const width = vectors.marker.length;
  const scores = Array.from({ length: tokens.length / width }, (_, c) => vectors.marker.reduce((sum, m, d) => sum + (tokens[c * width + d]! - vectors.blank[d]!) * m, 0));
  const order = scores.map((_, c) => c).sort((a, b) => scores[b]! - scores[a]!);
  const rank = new Map(order.map((c, r) => [c, r]));
  return { ranks: order.filter(isCode).map((c) => rank.get(c)!).sort((a, b) => a - b), topIsCode: isCode(order[0]!) };
}

async function heldOutReading(tensors: TensorSource, maps: Float32Array, targets: BigInt64Array, vectors: ReadoutVectors | undefined,
  o: { cells: number; width: number; rms: number; threads?: number }): Promise<HeldOutReading> {
  const { g, reading, visual } = tokenPathGraph(tensors, o.cells, o.width, o.rms);
  g.output(reading.accuracy, 'accuracy');
  g.output(visual, 'visual');
  const session = await Session.fromGraph(g, { threads: o.threads });
  const [perMap, perTargets] = [o.cells * o.width, o.cells * READING_SLOTS];
  const isCharacter = (t: bigint) => t >= 0n && t < BigInt(NO_CHARACTER);
  let [right, all, rankSum, codeCells, topIsCode, images] = [0, 0, 0, 0, 0, 0];
  try {
    for (let i = 0; i < maps.length / perMap; i++) {
      const mine = targets.subarray(i * perTargets, (i + 1) * perTargets);
      const characters = mine.reduce((n, t) => n + (isCharacter(t) ? 1 : 0), 0);
      if (!characters) continue;
      const out = await session.run({
        high: new ort.Tensor('float32', maps.slice(i * perMap, (i + 1) * perMap), [1, o.cells, o.width]),
        reading_targets: new ort.Tensor('int64', mine.slice(), [1, o.cells, READING_SLOTS]),
      });
      [right, all] = [right + (out['accuracy']!.data as Float32Array)[0]! * characters, all + characters];
      if (!vectors) continue;
      const marked = markerRanks(out['visual']!.data as Float32Array, vectors, (c) => mine.subarray(c * READING_SLOTS, (c + 1) * READING_SLOTS).some(isCharacter));
      [rankSum, codeCells] = [rankSum + marked.ranks.reduce((a, b) => a + b, 0), codeCells + marked.ranks.length];
      [topIsCode, images] = [topIsCode + (marked.topIsCode ? 1 : 0), images + 1];
    }
  } finally {
    await session.dispose();
  }
  return { share: right / all, ...(vectors ? { marker: { meanRank: rankSum / codeCells, topIsCode: topIsCode / images } } : {}) };
}

/**
 * The ConvNeXt's last map as tokens [count, cells, width] for the inputs `input(i)` gives, with their reading
 * targets [count, cells, READING_SLOTS] (the lab's plans give the map the ViT's 32 × 32 grid; checked).
 */
async function convnextMaps(model: LabVisualModel, source: TensorSource, count: number, what: string, opts: TokenPathPretrainOptions,
  input: (i: number) => Promise<{ image: Float32Array; targets: Int32Array }>): Promise<{ maps: Float32Array; targets: BigInt64Array }> {
  const { config, prefix } = model.convnext!;
  const S = model.size;
  const cells = model.visualTokens;
  const perMap = cells * config.dims.at(-1)!;
  const g = new Graph('convnext-maps');
  const last = convnextStages(new WeightScope(g, source, '', identityLayout).at(prefix), config, g.input('pixel_values', 'float32', [1, 3, S, S])).at(-1)!;
  if ((last.shape[2] as number) ** 2 !== cells) throw new Error(`stage 1: the ConvNeXt's ${String(last.shape[2])}² map is not the ViT's ${cells} cells`);
  g.output(mapToTokens(last), 'map');
  const session = await Session.fromGraph(g, { threads: opts.threads });
  const maps = new Float32Array(count * perMap);
  const targets = new BigInt64Array(count * cells * READING_SLOTS);
  try {
    let next = count > 0 ? input(0) : undefined;
    for (let i = 0; i < count; i++) {
      const { image, targets: mine } = await next!;
      // The next input renders while this one runs.
      if (i + 1 < count) next = input(i + 1);
      const out = await session.run({ pixel_values: new ort.Tensor('float32', image, [1, 3, S, S]) });
      maps.set(out['map']!.data as Float32Array, i * perMap);
      targets.set(Array.from(mine, BigInt), i * cells * READING_SLOTS);
      if ((i + 1) % 50 === 0 || i + 1 === count) opts.log?.(`stage 1: ConvNeXt maps of ${i + 1}/${count} ${what}`);
    }
  } finally {
    await session.dispose();
  }
  return { maps, targets };
}
