/**
 * The read-out in isolation (docs/LAB.md, Status): the MRA plan's LLaMA, fresh, trained alone on synthetic visual
 * tokens whose content is known exactly, with the lab's prompts, answers and attention aid. The whole model's
 * answer stayed at the character prior while its aided heads found the code; this asks, in minutes instead of
 * hours, under which conditions the decoder learns to turn the token it looks at into the character.
 *
 * A sample's visual tokens: every cell holds a fixed "blank" vector; the code's cells add a fixed "code" marker and,
 * for each character k of the code in that cell, a fixed random vector of (slot k, that character) — what the reading
 * head asks of a cell (reading.ts); 30 distractor cells hold random slot–character sums without the marker.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as op from '../graph/ops/index.js';
import { identityLayout } from '../graph/weights.js';
import { llavaHrConfig } from '../models/llava-hr.js';
import { buildVisualTrainingForward } from '../models/visual-training.js';
import { ort } from '../runtime/session.js';
import { loadTokenizer } from '../text/load.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { LlamaConfig } from '../models/llama/config.js';
import { crossEntropy } from '../train/loss.js';
import { warmupCosine } from '../train/schedule.js';
import { checkpointTensors, freshTensors, type TensorSpec } from '../train/scratch.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { Trainer } from '../train/trainer.js';
import { labTokenizerModel } from './datasets.js';
import { labLlavaHrConfig, labLlavaHrTensors, type LabLlavaHrShape } from './models.js';
import { Rng } from './random.js';
import { CODE_ALPHABET, MAX_CODE_LENGTH, smallPrintText } from './smallprint.js';
import { IGNORE } from './reading.js';
import { answerFeeds, attentionAidLoss, codeRowMask, placeAidLoss, placeRows, placeStrength, positionAidLoss, positionHeadSpecs, smallPrintExample } from './answer-aids.js';
import { LAB_OPTIMIZATION } from './optimization.js';
import { readoutVectors, type ReadoutVectors, type VectorSettings } from './readout-vectors.js';

/**
 * Where a code's characters lie: `code`, over one or two neighbouring cells, as in the task's 32-px cells (four or
 * five characters a cell); `one`, a cell for each character; `everywhere`, the first character's vector in every
 * cell and nothing else (no place to find: the path from visual tokens to the logits alone); `whole`, the whole code
 * in every cell (nothing to find, but each row must read its own place out of the cell).
 */
export type ReadoutLayout = 'code' | 'one' | 'everywhere' | 'whole';

export interface ReadoutProbeOptions {
  shape: LabLlavaHrShape;
  /** Visual tokens a sample (the plan's ViT grid: 1024). */
  cells: number;
  vectors?: VectorSettings;
  steps: number;
  lr: number;
  batch: number;
  layout: ReadoutLayout;
  /** The attention aid's weight (0: off): at each code character's row, head k mod heads looks at its cell. */
  attention: number;
  /** The decoder layer whose heads the aid points (negative: from the last). */
  aidLayer: number;
  /** The other aided heads look at <s> at a code character's row (AttentionAid.sink). */
  sink?: boolean;
  /** The position aid's weight (0 or absent: off) and the decoder layer it probes (positionAidLoss). */
  positionAid?: number;
  positionLayer?: number;
  /**
   * Hand each row that predicts a code character its place k: a fixed random vector for k (placeVectors) added to
   * the row's input. Not something a model has: it measures how much of the read-out is working out the place.
   */
  givePlace?: boolean;
  /**
   * Hand the place only until this step, at full strength for the first half of those steps and fading linearly to
   * nothing over the second: a crutch while the read-out is learnt, gone before the end, so that the decoder must
   * work the place out itself (with the position aid, say) by the time it is scored without it.
   */
  givePlaceUntil?: number;
  /**
   * Weight of the place aid (0 or absent: off): the squared distance of decoder layer `positionLayer`'s output, at
   * each row that predicts a code character, from the place vector that givePlace hands that row. It teaches the
   * decoder to write the crutch into its own rows, so that what learnt to read it keeps it once it fades.
   */
  placeAid?: number;
  /**
   * Fresh N(0, noise²) added to every dimension of every token of every sample (absent: none): what a real tower's
   * tokens carry besides the code, which the probe's clean cells lack (docs/LAB.md, fourteenth session).
   */
  noise?: number;
  /** Steps that score only the code's first character; all of them after. */
  firstUntil: number;
  seed: number;
  threads?: number;
}

/** What a plan sets of stage 2's read-out (train-visual.ts): the rest is the model's and stage 1's. */
export type ReadoutStageSettings = Pick<ReadoutProbeOptions, 'steps' | 'lr' | 'batch' | 'attention' | 'aidLayer' | 'positionLayer' | 'givePlaceUntil' | 'placeAid' | 'noise' | 'firstUntil'>;

export interface ReadoutProbeReport {
  step: number;
  /** Means over the steps since the last report. */
  answer: number;
  attention?: number;
  position?: number;
  place?: number;
  seconds: number;
}

/**
 * The probe's aids by default: the eleventh session's MRA plan (the attention aid at layer 0, the first character
 * alone for 300 steps, lr 1e-3), fixed so that the commands in docs/LAB.md mean what they meant when they ran; the
 * plan itself has since taken the twelfth session's recipe, which the probe gives with its options.
 */
export const READOUT_DEFAULTS = { lr: 1e-3, attention: 1, aidLayer: 0, firstUntil: 300 };

const DISTRACTORS = 30;

/** One sample's visual tokens [cells, width] and the cell of each of the code's characters. */
export function syntheticVisualTokens(vectors: ReadoutVectors, code: string, layout: ReadoutLayout, cells: number, rng: Rng): { grid: Float32Array; at: number[] } {
  const width = vectors.blank.length;
  const grid = new Float32Array(cells * width);
  const add = (cell: number, v: Float32Array) => {
    for (let d = 0; d < width; d++) grid[cell * width + d]! += v[d]!;
  };
  const { follows } = vectors;
  const slot = (k: number, ch: string) => follows
    ? follows[k === 0 ? CODE_ALPHABET.length : CODE_ALPHABET.indexOf(code[k - 1]!)]![CODE_ALPHABET.indexOf(ch)]!
    : vectors.slots[k]![CODE_ALPHABET.indexOf(ch)]!;
  const anyVector = () => (follows ?? vectors.slots)[rng.int(0, (follows?.length ?? MAX_CODE_LENGTH) - 1)]![rng.int(0, CODE_ALPHABET.length - 1)]!;
  if (layout === 'everywhere' || layout === 'whole') {
    const held = layout === 'whole' ? [...code] : [code[0]!];
    for (let c = 0; c < cells; c++) held.forEach((ch, k) => add(c, slot(k, ch)));
    return { grid, at: [...code].map(() => 0) };
  }
  for (let c = 0; c < cells; c++) add(c, vectors.blank);
  const first = rng.int(0, cells - code.length);
  const split = rng.int(1, code.length - 1);
  const at = [...code].map((_, k) => (layout === 'one' ? first + k : first + (k >= split ? 1 : 0)));
  [...code].forEach((ch, k) => add(at[k]!, slot(k, ch)));
  new Set(at).forEach((c) => add(c, vectors.marker));
  for (let j = 0; j < DISTRACTORS; j++) {
    const c = rng.int(0, cells - 1);
    if (at.includes(c)) continue;
    const n = rng.int(1, 4);
    for (let i = 0; i < n; i++) add(c, anyVector());
  }
  return { grid, at };
}

/** The decoder a read-out trains: its config, its tensors' specs (the decoder's alone) and its tokenizer. */
export interface ReadoutDecoder {
  llm: LlamaConfig;
  specs: Map<string, TensorSpec>;
  tokenizer: Tokenizer;
}

/** Trains the probe; `onReport` every `every` steps with the means since the last report. */
export async function runReadoutProbe(opts: ReadoutProbeOptions, onReport: (report: ReadoutProbeReport) => void, every = 25): Promise<ReadoutProbeReport[]> {
  const llm = llavaHrConfig(labLlavaHrConfig(opts.shape), 'readout-probe').llm;
  const specs = new Map([...labLlavaHrTensors(opts.shape)].filter(([name]) => !name.startsWith('model.vision_tower') && !name.startsWith('model.mm_projector')));
  const dir = await mkdtemp(join(tmpdir(), 'egret-readout-'));
  try {
    await writeFile(join(dir, 'tokenizer.model'), labTokenizerModel(0, 2000, opts.shape.vocab));
    return (await trainReadout({ llm, specs, tokenizer: await loadTokenizer(join(dir, 'tokenizer.model')) }, opts, onReport, every)).reports;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Trains `decoder`, fresh, on the probe's synthetic tokens; returns the reports and its trained tensors under their
 * checkpoint names (what stage 2 hands the whole model, train-visual.ts).
 */
export async function trainReadout(decoder: ReadoutDecoder, opts: Omit<ReadoutProbeOptions, 'shape'>, onReport: (report: ReadoutProbeReport) => void, every = 25):
  Promise<{ reports: ReadoutProbeReport[]; tensors: Map<string, Float32Array> }> {
  const { llm, tokenizer } = decoder;
  const { hidden: width, heads } = llm;
  const position = opts.positionAid ?? 0;
  const specs = new Map(decoder.specs);
  if (position > 0) for (const [name, spec] of positionHeadSpecs(width)) specs.set(name, spec);
  // The pixels input is kept (1 × 1, added at zero): the graph has the inputs of the lab's own forward.
  const source = freshTensors(specs, opts.seed);
  // How strongly the place is handed at a step, when it is.
  const crutch = opts.givePlace || opts.givePlaceUntil !== undefined;
  const forward = buildVisualTrainingForward('readout-probe', 1, source, llm, identityLayout, (pixels) =>
    op.add(pixels.graph.input('visual_in', 'float32', ['batch', opts.cells, width]), op.mul(op.reduceSum(pixels, [0, 1, 2, 3], false), 0)),
    crutch ? 'places_in' : undefined);
  const g = forward.graph;
  const answer = crossEntropy(forward.logits, g.input('targets', 'int64', ['batch', 'seq']), IGNORE);
  g.output(answer, 'answer_loss');
  let loss = answer;
  if (opts.attention > 0) {
    const aid = attentionAidLoss(forward.attention, opts.aidLayer, heads);
    g.output(aid, 'attention_loss');
    loss = op.add(loss, op.mul(aid, opts.attention));
  }
  if (position > 0) {
    const aid = positionAidLoss(g, source, forward.hidden, opts.positionLayer ?? 0);
    g.output(aid, 'position_loss');
    loss = op.add(loss, op.mul(aid, position));
  }
  const placeAid = opts.placeAid ?? 0;
  if (placeAid > 0) {
    const aid = placeAidLoss(forward.hidden, opts.positionLayer ?? 0);
    g.output(aid, 'place_loss');
    loss = op.add(loss, op.mul(aid, placeAid));
  }
  const training = buildTrainingGraph(g, loss, { trainable: (name) => name.split('+').every((part) => specs.has(part)), ...LAB_OPTIMIZATION });
  const trainer = await Trainer.create(training, { threads: opts.threads, metrics: ['answer_loss', ...(opts.attention > 0 ? ['attention_loss'] : []), ...(position > 0 ? ['position_loss'] : []), ...(placeAid > 0 ? ['place_loss'] : [])] });
  try {
    const vectors = readoutVectors(width, opts.seed, opts.vectors);
    const rng = new Rng(opts.seed + 1);
    // Its own stream, so that the tokens' layouts are those of a run without noise.
    const noise = new Rng(opts.seed + 2);
    const reports: ReadoutProbeReport[] = [];
    const began = performance.now();
    let sums = { answer: 0, attention: 0, position: 0, place: 0, n: 0 };
    for (let step = 0; step < opts.steps; step++) {
      const samples = Array.from({ length: opts.batch }, (_, b) => {
        const index = step * opts.batch + b;
        const { code, question } = smallPrintText(opts.seed, index);
        return { ...syntheticVisualTokens(vectors, code, opts.layout, opts.cells, rng), example: smallPrintExample(tokenizer, question, code, index % 2 === 0) };
      });
      const B = opts.batch;
      const visual = new Float32Array(B * opts.cells * width);
      samples.forEach((s, b) => visual.set(s.grid, b * opts.cells * width));
      if (opts.noise) for (let i = 0; i < visual.length; i++) visual[i]! += noise.normal() * opts.noise;
      const aid = opts.attention > 0 ? { heads, cell: (b: number, k: number) => samples[b]!.at[k]!, sink: opts.sink } : undefined;
      const examples = samples.map((s) => s.example);
      const feeds = answerFeeds(examples, opts.cells, step < opts.firstUntil, aid, position > 0);
      const seq = feeds['targets']!.dims[1]!;
      const r = await trainer.run({
        ...feeds,
        ...(crutch ? { places_in: placeRows(examples, opts.cells, seq, vectors.places, placeStrength(step, opts.givePlaceUntil)) } : {}),
        ...(placeAid > 0 ? { place_targets: placeRows(examples, opts.cells, seq, vectors.places), place_rows: codeRowMask(examples, opts.cells, seq) } : {}),
        pixel_values: new ort.Tensor('float32', new Float32Array(B * 3), [B, 3, 1, 1]),
        visual_in: new ort.Tensor('float32', visual, [B, opts.cells, width]),
      }, warmupCosine(opts.lr, step, opts.steps, 20));
      sums = { answer: sums.answer + r.metrics['answer_loss']!, attention: sums.attention + (r.metrics['attention_loss'] ?? 0), position: sums.position + (r.metrics['position_loss'] ?? 0), place: sums.place + (r.metrics['place_loss'] ?? 0), n: sums.n + 1 };
      if ((step + 1) % every === 0 || step + 1 === opts.steps) {
        const report: ReadoutProbeReport = {
          step: step + 1,
          answer: sums.answer / sums.n,
          ...(opts.attention > 0 ? { attention: sums.attention / sums.n } : {}),
          ...(position > 0 ? { position: sums.position / sums.n } : {}),
          ...(placeAid > 0 ? { place: sums.place / sums.n } : {}),
          seconds: (performance.now() - began) / 1000,
        };
        reports.push(report);
        onReport(report);
        sums = { answer: 0, attention: 0, position: 0, place: 0, n: 0 };
      }
    }
    const trained = new Map(trainer.tensors.map((t) => [t.name, Float32Array.from(trainer.param(t.name) as Float32Array)]));
    const tensors = checkpointTensors(g, trained, (name) => source.info(name).shape);
    for (const name of tensors.keys()) if (!decoder.specs.has(name)) tensors.delete(name);
    return { reports, tensors };
  } finally {
    await trainer.dispose();
  }
}
