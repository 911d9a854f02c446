/**
 * Stage 0 of the lab's MRA model, as LLaVA-HR starts from a ConvNeXt pretrained elsewhere: its ConvNeXt alone
 * learns to read. Crops of sheets printed with codes (renderCodeSheet: the print as the task's code has it in the
 * square the MRA model's ConvNeXt sees) go through the ConvNeXt's stages; a linear head on the last-stage cells is
 * told which character of which code lies in each cell (reading.ts), and a glyph head on the second stage's cells
 * (a character or two each) which characters lie there, left to right; both train with AdamW and are dropped.
 * Without the glyph head the last-stage head read 23 % of the characters at the task's size after 1000 steps; the
 * early stages, which must tell 8-px glyphs apart, learnt too little through it alone (docs/LAB.md, "Status"). A
 * crop of a sheet holds twenty and more characters where a task image holds five, costs a ninth of the image, and
 * no LLaMA runs: the high-resolution path sees far more characters a second than training the whole model gives.
 */
import { Graph } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { identityLayout, WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { copyTensors, MemorySource, replaceTensors } from '../io/memory-source.js';
import { convnextStages, type ConvNextConfig } from '../models/convnext.js';
import { mapToTokens } from '../models/llava-hr/mr-adapter.js';
import { ort } from '../runtime/session.js';
import { decodeImage } from '../vision/decode.js';
import { checkpointTensors, freshTensors } from '../train/scratch.js';
import { warmupCosine } from '../train/schedule.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { Trainer } from '../train/trainer.js';
import { resumeTraining } from '../train/trainer-state.js';
import type { LabVisualModel } from './models.js';
import { LAB_OPTIMIZATION } from './optimization.js';
import { sampleRng } from './random.js';
import { Session } from '../runtime/session.js';
import {
  type CharacterCentre, cellsReadAsCharacters, cellTargets, characterCells, characterCentres, glyphTargets, paddedSquare, READING_HEAD, READING_SLOTS, readInPlace, readingHeadLogits, readingHeadLoss,
  readingHeadSpecs,
} from './reading.js';
import type { Box } from './raster.js';
import { renderCodeSheet, renderSmallPrint, type SmallPrintSample } from './smallprint.js';

export interface ConvnextPretrainSettings {
  steps: number;
  /**
   * Sheets held at once; one is rendered afresh over each `renderEvery` steps (while they train) in place of the
   * oldest, and a step's crops come from any of them.
   */
  sheets: number;
  /**
   * Codes asked of each sheet (renderCodeSheet; fewer fit when they crowd): denser sheets give a crop more labelled
   * characters for the same compute.
   */
  codes: number;
  /**
   * A sheet is rendered afresh every this many steps (absent: every step), while they train, and joins the pool
   * after the last of them. A 1024-px sheet costs ≈ 1.4 s of CPU (sharp's ≈ 5 ms to rotate and shrink each code's
   * mask), twice what training a step of 16 crops does: one a step made each step ≈ 3 s on two cores. A sheet of
   * ≈ 130 codes is not used up by the crops of one step.
   */
  renderEvery?: number;
  /** Distractor words drawn among each sheet's codes (renderCodeSheet; absent: a few after them). */
  words?: number;
  /**
   * Print the sheets' codes and words at cap heights from the smallest this share of the task's range (renderCodeSheet;
   * absent: all of it): at 1024 px, 0.5 is 8–10.6 px, where the last stage read least (docs/LAB.md, eighteenth session).
   */
  smallCaps?: number;
  /**
   * Tell every last-stage cell that a word's ink covers 'no character' (a crop tells one blank cell in
   * SHEET_BLANK_STRIDE otherwise), and leave the glyph head's word cells out (it would tell their capitals 'no
   * character'): a task image prints 4–14 words in the code's font, and a reader never told they are not code reads
   * them as code (docs/LAB.md, fifteenth session).
   */
  blankWords?: boolean;
  /** Crops a step, each from a sheet of the pool drawn at random. */
  crops: number;
  /**
   * Of the step's crops, `crops` come from whole task images instead (a pool of `images`, one rendered afresh each
   * step), every cell without a code character told 'no character': sheets hold codes and little else, and a
   * reader trained on them alone reads characters in 20 % of a task image's cells — expand2square's padding,
   * shapes, lines, words (docs/LAB.md, sixteenth session).
   */
  tasks?: { crops: number; images: number };
  /** Crop side in pixels of the preprocessed image (a multiple of the ConvNeXt's stride). */
  crop: number;
  lr: number;
  warmup: number;
  /** The curriculum's ease (renderCodeSheet) at the first step, falling linearly to 0 at step `easeSteps`. */
  ease: number;
  easeSteps: number;
}

export interface ConvnextPretrainOptions extends ConvnextPretrainSettings {
  seed: number;
  threads?: number;
  /**
   * `loss` is the last-stage head's cross-entropy on the characters, `accuracy` the share it reads right (reading.ts),
   * `glyphs` the share the glyph head reads right.
   */
  onStep?: (report: { step: number; loss: number; accuracy: number; glyphs: number; lr: number; seconds: number }) => void;
  log?: (message: string) => void;
  /**
   * Where the training state is kept (trainer-state.ts) every `saveEvery` steps and at the end; a state found there
   * is resumed: the same batches follow as if the run had not stopped.
   */
  statePath?: string;
  saveEvery?: number;
  /** At the end, how well the trained ConvNeXt and its reading head read whole task images (readingCeiling). */
  check?: { seed: number; count: number };
  /**
   * Return stage 0's reading head too, in place of `source`'s own (which must have its shape): the whole model's
   * reading head on the visual tokens then starts from it.
   */
  keepReadingHead?: boolean;
}

/**
 * Stage 0's reading of whole task images (sample 0…count-1 of a held-out seed, as specified): the share of the
 * codes' characters its reading head puts in place, overall and by the code's cap height in the ConvNeXt's input
 * (rounded to whole pixels), and the share of codes read whole. The whole model's visual tokens carry what the
 * ConvNeXt's last stage holds, so a code this head cannot read is one the frozen-ConvNeXt model can rarely answer:
 * it bounds the exact match the whole model can reach.
 */
export interface ReadingCeiling {
  images: number;
  characters: number;
  codes: number;
  byCapHeight: { capHeight: number; characters: number; share: number }[];
  /**
   * Cells without a code character in which the head reads a character in some slot, per image: what it takes for
   * code (padding, shapes, words), which a decoder reading its features cannot tell from the code.
   */
  falseCells: number;
}

/** Pixels of the input per cell of the ConvNeXt's last stage: the stem's patch, then 2× per later stage. */
function lastStageStride(config: ConvNextConfig): number {
  return config.patchSize * 2 ** (config.dims.length - 1);
}

/**
 * Code sheet `index` of `seed` at the MRA `model`'s input size, its codes a last-stage cell apart: the image as the
 * model's ConvNeXt sees it and the character centres of each code in its pixels.
 */
export async function codeSheetInput(model: LabVisualModel, seed: number, index: number, ease: number, codes: number, words = 0, smallCaps = 1): Promise<{ image: Float32Array; codes: CharacterCentre[][]; words: Box[] }> {
  const side = model.size;
  const sheet = await renderCodeSheet(seed, index, side, lastStageStride(model.convnext!.config), ease, codes, words, smallCaps);
  const centres = sheet.codes.map((c) => characterCentres({ ...c, width: side, height: side }, side));
  if (!centres.length) throw new Error(`code sheet ${sheet.index} at ${side} px has no code`);
  return { image: model.preprocess(await decodeImage(sheet.png)), codes: centres, words: sheet.words };
}

/** Stage 0's task images are samples of the training seed from this index on, apart from the other stages'. */
const STAGE_ZERO_FIRST_SAMPLE = 20_000_000;

/**
 * Task sample `index` of `seed` as the MRA `model` sees it (padded to a square and resized), with its code's
 * character centres and its words' ink boxes in the input's pixels.
 */
async function taskInput(model: LabVisualModel, seed: number, index: number): Promise<{ image: Float32Array; codes: CharacterCentre[][]; words: Box[] }> {
  const sample = await renderSmallPrint(seed, index);
  const { scale, ox, oy } = paddedSquare(sample, model.size);
  const words = sample.words.map((b) => ({ x: (ox + b.x) * scale, y: (oy + b.y) * scale, width: b.width * scale, height: b.height * scale }));
  return { image: model.preprocess(await decodeImage(sample.png)), codes: [characterCentres(sample, model.size)], words };
}

/** One blank cell in this many within a crop (or a sheet) says 'no character'. */
const SHEET_BLANK_STRIDE = 4;
/** The same for the glyph head's cells, sixteen times as many. */
const GLYPH_BLANK_STRIDE = 16;
const GLYPH_HEAD = 'lab_glyph_head';

/**
 * Pretrains the ConvNeXt of `model` (a lab LLaVA-HR) whose fresh tensors `source` holds; returns a source with
 * the same tensors, the ConvNeXt's replaced by the trained ones, and the seconds it trained (over all runs when
 * resumed).
 */
export async function pretrainConvnext(model: LabVisualModel, source: TensorSource, opts: ConvnextPretrainOptions): Promise<{ source: MemorySource; seconds: number; ceiling?: ReadingCeiling }> {
  const log = opts.log ?? (() => undefined);
  if (!model.convnext) throw new Error(`stage 0 pretrains an MRA model's ConvNeXt; a ${model.family} model has none`);
  const { config: convnext, prefix } = model.convnext;
  const names = [...model.specs.keys()].filter((n) => n.startsWith(`${prefix}.`));
  const stride = lastStageStride(convnext);
  if (opts.crop % stride !== 0 || opts.crop > model.size) throw new Error(`stage 0: crop ${opts.crop} must be a multiple of ${stride} up to ${model.size}`);
  const every = opts.renderEvery ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new Error(`stage 0: renderEvery must be a whole number of steps ≥ 1, not ${every}`);
  const glyphStride = convnext.patchSize * 2;
  const head = freshTensors(new Map([...readingHeadSpecs(convnext.dims.at(-1)!), ...readingHeadSpecs(convnext.dims[1]!, GLYPH_HEAD)]), opts.seed);
  const readingHead = [`${READING_HEAD}.weight`, `${READING_HEAD}.bias`];
  if (opts.keepReadingHead) {
    // Checked before hours of training, not after.
    const name = readingHead[0]!;
    if (!source.list().some((t) => t.name === name)) throw new Error('keepReadingHead: the whole model has no reading head');
    const [mine, theirs] = [head.info(name).shape, source.info(name).shape];
    if (mine.join() !== theirs.join()) throw new Error(`stage 0's ${name} [${mine.join('×')}] does not fit the whole model's [${theirs.join('×')}]`);
  }
  const both = new MemorySource({ ...await copyTensors(source, names), ...await copyTensors(head) });
  const g = new Graph('convnext-reading');
  const S = opts.crop;
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, S, S]);
  const stages = convnextStages(new WeightScope(g, both, '', identityLayout).at(prefix), convnext, pixels);
  const reading = readingHeadLoss(g, both, mapToTokens(stages.at(-1)!));
  const glyphs = readingHeadLoss(g, both, mapToTokens(stages[1]!), GLYPH_HEAD, 'glyph_targets');
  g.output(reading.characters, 'characters');
  g.output(reading.accuracy, 'accuracy');
  g.output(glyphs.accuracy, 'glyphs');
  const loss = [reading.blanks, glyphs.characters, glyphs.blanks].reduce((sum, term) => op.add(sum, term), reading.characters);
  const training = buildTrainingGraph(g, loss, {
    trainable: (name) => name.split('+').every((part) => both.has(part)),
    ...LAB_OPTIMIZATION,
  });
  log(`stage 0: the ConvNeXt alone on ${S}-px crops, ${opts.steps} steps of ${opts.crops} crops from ${opts.sheets} code sheets`);
  const trainer = await Trainer.create(training, { threads: opts.threads, metrics: ['characters', 'accuracy', 'glyphs'] });
  const began = performance.now();
  const run = opts.statePath ? await resumeTraining(opts.statePath, trainer, opts.steps) : undefined;
  const start = run?.start ?? 0;
  if (start > 0) log(`stage 0: resuming at step ${start} from ${opts.statePath}`);
  const side = model.size;
  const count = (S / stride) ** 2;
  const glyphCount = (S / glyphStride) ** 2;

  const easeAt = (step: number) => opts.ease * Math.max(0, 1 - step / Math.max(1, opts.easeSteps));
  const render = (index: number, ease: number) => codeSheetInput(model, opts.seed, index, ease, opts.codes, opts.words, opts.smallCaps);
  const renderTask = (index: number) => taskInput(model, opts.seed, STAGE_ZERO_FIRST_SAMPLE + index);
  // Sheet render n is made at the ease of step n · every, the first of the steps it renders over.
  const sheets = await renderedPool(opts.sheets, every, start, (i) => render(i, easeAt(0)), (n) => render(opts.sheets + n, easeAt(n * every)));
  const taskImages = opts.tasks?.images ?? 0;
  const tasks = await renderedPool(taskImages, 1, start, renderTask, (n) => renderTask(taskImages + n));
  const B = opts.crops;
  const fromTasks = opts.tasks?.crops ?? 0;
  // A sheet's crop always holds characters; a batch without any would make the characters' loss NaN.
  if (fromTasks >= B || (fromTasks > 0 && taskImages < 1)) throw new Error(`stage 0: ${fromTasks} crops a step from task images must leave some of the ${B} to sheets, and need images (${taskImages})`);

  // Each step draws from its own stream, so that a resumed run draws what the whole run would have.
  const batch = (step: number) => {
    const rng = sampleRng(opts.seed, 'stage0-crops', step);
    const random = () => rng.float();
    const crops = new Float32Array(B * 3 * S * S);
    const targets = new BigInt64Array(B * count * READING_SLOTS);
    const glyphs = new BigInt64Array(B * glyphCount * READING_SLOTS);
    for (let k = 0; k < B; k++) {
      // The last `fromTasks` crops are task images': every cell without a code character is a blank one, and half of
      // them lie anywhere in the image.
      const task = k >= B - fromTasks;
      const { image, codes, words } = task ? tasks.items[Math.floor(random() * tasks.items.length)]! : sheets.items[Math.floor(random() * sheets.items.length)]!;
      // Each crop holds some of a code (of those drawn at random), so that no batch is without characters.
      const centres = codes[Math.floor(random() * codes.length)]!;
      const mid = centres[Math.floor(random() * centres.length)]!;
      const anywhere = task && random() < 0.5;
      const place = (centre: number) => Math.round(Math.min(side - S, Math.max(0, anywhere ? random() * (side - S) : centre - S / 2 + (random() - 0.5) * (S - stride))));
      const [x0, y0] = [place(mid.x), place(mid.y)];
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < S; y++) {
          const from = ch * side * side + (y0 + y) * side + x0;
          crops.set(image.subarray(from, from + S), ((k * 3 + ch) * S + y) * S);
        }
      }
      const wordBoxes = opts.blankWords || task ? words : [];
      targets.set(Array.from(cellTargets(codes, x0, y0, S, stride, task ? 1 : SHEET_BLANK_STRIDE, wordBoxes), BigInt), k * count * READING_SLOTS);
      glyphs.set(Array.from(glyphTargets(codes, x0, y0, S, glyphStride, GLYPH_BLANK_STRIDE, wordBoxes), BigInt), k * glyphCount * READING_SLOTS);
    }
    return { crops, targets, glyphs };
  };

  for (let step = start; step < opts.steps; step++) {
    const started = performance.now();
    // The pools' next items render while the step trains.
    sheets.beforeStep(step);
    tasks.beforeStep(step);
    const { crops, targets, glyphs } = batch(step);
    const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
    const result = await trainer.run({
      pixel_values: new ort.Tensor('float32', crops, [B, 3, S, S]),
      reading_targets: new ort.Tensor('int64', targets, [B, count, READING_SLOTS]),
      glyph_targets: new ort.Tensor('int64', glyphs, [B, glyphCount, READING_SLOTS]),
    }, lr);
    await sheets.afterStep(step);
    await tasks.afterStep(step);
    const m = result.metrics;
    opts.onStep?.({ step: step + 1, loss: m['characters']!, accuracy: m['accuracy']!, glyphs: m['glyphs']!, lr, seconds: (performance.now() - started) / 1000 });
    if (run && ((opts.saveEvery && (step + 1) % opts.saveEvery === 0) || step + 1 === opts.steps)) await run.save();
  }
  const trained = checkpointTensors(g, new Map(trainer.tensors.map((t) => [t.name, Float32Array.from(trainer.param(t.name) as Float32Array)])), (n) => both.info(n).shape);
  await trainer.dispose();
  // The ConvNeXt's, and stage 0's reading head when asked: the whole model's own head (on the visual tokens) has its
  // name, not its input.
  const kept = [...names, ...(opts.keepReadingHead ? readingHead : [])];
  const out = await replaceTensors(source, new Map(kept.map((n) => [n, trained.get(n)!])));
  const seconds = run?.seconds() ?? (performance.now() - began) / 1000;
  if (!opts.check) return { source: out, seconds };
  const reader = new MemorySource(Object.fromEntries([...names, ...readingHead].map((n) => [n, { shape: both.info(n).shape, data: trained.get(n)! }])));
  return { source: out, seconds, ceiling: await readingCeiling(model, reader, opts.check, opts.threads) };
}

/** Items a run's steps draw from, one replaced at a time while the steps train (renderedPool). */
interface RenderedPool<T> {
  readonly items: T[];
  /** Starts the render made over the steps from this one, when one starts here. */
  beforeStep(step: number): void;
  /** Puts the render made over the steps up to this one in its slot, when it ends here. */
  afterStep(step: number): Promise<void>;
}

/**
 * `size` items as step `start` finds them, of which one is replaced over every `every` steps: render n is made
 * while steps n · every … (n + 1) · every − 1 train and takes slot n mod size after the last of them; a slot no
 * render has taken yet holds `first(slot)`. A resumed run so holds the items the whole run held at that step.
 */
async function renderedPool<T>(size: number, every: number, start: number, first: (slot: number) => Promise<T>, rendered: (n: number) => Promise<T>): Promise<RenderedPool<T>> {
  const done = Math.floor(start / every);
  const items = await Promise.all(Array.from({ length: size }, (_, slot) => {
    const n = done - 1 - ((done - 1 - slot) % size + size) % size;
    return n >= 0 ? rendered(n) : first(slot);
  }));
  let rendering: Promise<T> | undefined;
  return {
    items,
    beforeStep(step) {
      if (size === 0 || (step !== start && step % every !== 0)) return;
      rendering = rendered(Math.floor(step / every));
      // Handled where it takes its slot, possibly steps later; until then a failure must not count as unhandled.
      rendering.catch(() => undefined);
    },
    async afterStep(step) {
      if (size === 0 || (step + 1) % every !== 0) return;
      items[((step + 1) / every - 1) % size] = await rendering!;
    },
  };
}

/** The reading head's logits on whole task images, through the ConvNeXt and head in `weights` (stageZeroReader). */
export interface StageZeroReader {
  /** The last stage's cells a side. */
  readonly grid: number;
  /** Logits [grid², READING_SLOTS, classes] for a task image as the MRA model sees it (readInPlace's layout). */
  read(sample: SmallPrintSample): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** A session reading whole task images with the ConvNeXt and reading head in `weights` (checkpoint layout). */
export async function stageZeroReader(model: LabVisualModel, weights: TensorSource, threads?: number): Promise<StageZeroReader> {
  if (!model.convnext) throw new Error(`the reading check reads an MRA model's ConvNeXt; a ${model.family} model has none`);
  const { config, prefix } = model.convnext;
  const S = model.size;
  const g = new Graph('convnext-reading-check');
  const last = convnextStages(new WeightScope(g, weights, '', identityLayout).at(prefix), config, g.input('pixel_values', 'float32', [1, 3, S, S])).at(-1)!;
  g.output(readingHeadLogits(g, weights, mapToTokens(last)), 'logits');
  const session = await Session.fromGraph(g, { threads });
  return {
    grid: S / lastStageStride(config),
    read: async (sample) => (await session.run({ pixel_values: new ort.Tensor('float32', model.preprocess(await decodeImage(sample.png)), [1, 3, S, S]) }))['logits']!.data as Float32Array,
    dispose: () => session.dispose(),
  };
}

/** ReadingCeiling of the ConvNeXt and reading head in `weights` (checkpoint layout) on whole task images. */
export async function readingCeiling(model: LabVisualModel, weights: TensorSource, check: { seed: number; count: number }, threads?: number): Promise<ReadingCeiling> {
  const reader = await stageZeroReader(model, weights, threads);
  const { grid } = reader;
  const bySize = new Map<number, [number, number]>();
  let [read, characters, codes, falseCells] = [0, 0, 0, 0];
  try {
    for (let i = 0; i < check.count; i++) {
      const sample = await renderSmallPrint(check.seed, i);
      const logits = await reader.read(sample);
      const cells = characterCells(sample, grid);
      const inPlace = readInPlace(logits, cells, sample.code);
      falseCells += cellsReadAsCharacters(logits, grid * grid).filter((cell) => !cells.includes(cell)).length;
      const size = Math.round((sample.capHeight * model.size) / Math.max(sample.width, sample.height));
      const tally = bySize.get(size) ?? [0, 0];
      const right = inPlace.filter(Boolean).length;
      bySize.set(size, [tally[0] + right, tally[1] + inPlace.length]);
      [read, characters] = [read + right, characters + inPlace.length];
      if (inPlace.every(Boolean)) codes++;
    }
  } finally {
    await reader.dispose();
  }
  return {
    images: check.count, characters: read / characters, codes: codes / check.count, falseCells: falseCells / check.count,
    byCapHeight: [...bySize].sort(([a], [b]) => a - b).map(([capHeight, [ok, all]]) => ({ capHeight, characters: all, share: ok / all })),
  };
}
