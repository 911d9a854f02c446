/**
 * Trains a lab vision-language model (LLaVA-HR or LLaVA-1.5, src/lab/models.ts) from scratch on the small-print
 * task, every weight at once, with egret's training engine, and saves it in its family's layout (config.json,
 * pytorch_model.bin, tokenizer.model) so that egret loads it as it loads a released model. Samples are rendered as
 * training goes (sample i of the run's seed), each seen once; the question follows vicuna_v1 as `egret generate`
 * renders it, with LLaVA's short-answer instruction on half of them; the loss is the answer's (the code, then
 * </s>), plus, as options, the reading head's (reading.ts) and the decoder's aids (answer-aids.ts), and, before it
 * all, an MRA model's stages 0 (pretrain-convnext.ts), 1 (pretrain-tokens.ts) and 2 (readout-probe.ts).
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Graph } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { openCheckpoint, type TensorSource } from '../io/checkpoint.js';
import { MemorySource, replaceTensors, zeroTensors } from '../io/memory-source.js';
import { writeSafetensors } from '../io/safetensors-write.js';
import { tensor, torchSave } from '../io/torch-save.js';
import { ort } from '../runtime/session.js';
import { loadTokenizer } from '../text/load.js';
import { decodeImage } from '../vision/decode.js';
import { crossEntropy } from '../train/loss.js';
import { checkpointTensors, freshTensors } from '../train/scratch.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { warmupCosine } from '../train/schedule.js';
import { Trainer } from '../train/trainer.js';
import { resumeTraining } from '../train/trainer-state.js';
import type { LabVisualModel } from './models.js';
import { pretrainConvnext, type ConvnextPretrainSettings, type ReadingCeiling } from './pretrain-convnext.js';
import { pretrainTokenPath, type TokenPathPretrainSettings, visualScaleLoss } from './pretrain-tokens.js';
import { LAB_OPTIMIZATION } from './optimization.js';
import { answerFeeds, attentionAidLoss, codeRowMask, placeAidLoss, placeRows, placeStrength, positionAidLoss, positionHeadSpecs, smallPrintExample, type Example } from './answer-aids.js';
import { placeVectors, readoutVectors } from './readout-vectors.js';
import { trainReadout, type ReadoutProbeReport, type ReadoutStageSettings } from './readout-probe.js';
import { blockedReadingHeadSpecs, characterCells, IGNORE, READING_SLOTS, readingHeadLoss, readingHeadSpecs, readingTargets } from './reading.js';
import { Rng } from './random.js';
import { renderSmallPrint } from './smallprint.js';
import type { TensorSpec } from '../train/scratch.js';


export interface LabTrainOptions {
  seed: number;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  threads?: number;
  /**
   * Curriculum: the first `easeSteps` steps see easier images (renderSmallPrint's ease falling linearly from
   * `ease` to 0); the rest the task as specified.
   */
  ease?: number;
  easeSteps?: number;
  /**
   * Weight of the reading head's loss (0 or absent: no head). A linear head on the visual tokens, trained along
   * and never saved, is told which code character lies in each cell of the token grid: dense supervision that
   * teaches the vision tower to see characters long before the answer's few tokens alone would.
   */
  reading?: number;
  /**
   * The reading head reads slot k from the k-th block of the visual token alone (blockedReadingHeadSpecs), so that
   * each place of a cell's characters lies in its own dimensions.
   */
  readingBlocks?: boolean;
  /**
   * One cell in this many without a code character is told 'no character' in every slot (absent: GRID_BLANK_STRIDE,
   * 16: cells of the grid's columns 0 and 16 only). At 1 every cell is: a token then says in each block whether the
   * code's character of that place lies there, as `egret lab readout`'s marker said where the code was — what an
   * aided head's keys can find the cell by (fourteenth session).
   */
  readingBlanks?: number;
  /**
   * The reading head starts as stage 0's (same width: the ConvNeXt's last stage and the decoder's; not blocked).
   * Fresh, the whole model's head sat at chance (3.6) for 250 steps; from stage 0's it fell to 2.9 by step 150
   * (docs/LAB.md, thirteenth session), though the projector between them starts random.
   */
  readingFromStageZero?: boolean;
  /**
   * Tell every visual token to keep this root mean square (visualScaleLoss, weight 1; absent: no such aid). A fresh
   * projector's tokens are ≈ 0.05; read past decoder layer 0 they drown in what layer 0 adds to the residual, and
   * in `egret lab readout` a head at layer 1 learnt to read tokens of 0.5 and not tokens of 0.05 (docs/LAB.md,
   * twelfth session).
   */
  visualRms?: number;
  /**
   * Weight of the attention aid (0 or absent: none): the last decoder layer's first head is told, at each row that
   * predicts a code character, to look at the visual token where that character lies (cross-entropy of its
   * attention). From scratch the decoder's attention over ≈ 600 visual tokens starts uniform, and the answer's
   * gradient through 1/600 of a token never taught it to find the code (docs/LAB.md): this tells it where to look.
   */
  attention?: number;
  /**
   * How many of the last layer's heads the attention aid tells (absent: 1, the first): the code's k-th character
   * goes to head k mod `attentionHeads`. A cell holds several characters; with one head for every k the head's
   * fixed value-output map brings all of them to the row, and the MLP must pick the k-th; with a head for each k
   * (mod the count) its value-output map can carry its own slot of the reading head's straight to the logits.
   */
  attentionHeads?: number;
  /**
   * The decoder layer whose heads the attention aid tells (absent: the last; negative counts from the last). At
   * layer 0 a head reads the visual token as the projector made it; `egret lab readout` learnt the read-out there
   * and not at the last layer (docs/LAB.md, eleventh session).
   */
  attentionLayer?: number;
  /**
   * For this many first steps the answer's loss is on the code's first character alone: one character to read out
   * of one cell before six. In `egret lab readout` every answer-wide run sat at the prior for 550–750 steps, and
   * this one left it.
   */
  firstCharacterSteps?: number;
  /** The attention aid's other heads look at <s> at a code character's row (AttentionAid.sink). */
  attentionSink?: boolean;
  /** Weight of the position aid (positionAidLoss; 0 or absent: none) and the decoder layer it reads (absent: 0). */
  positionAid?: number;
  positionLayer?: number;
  /**
   * Hand each row that predicts a code character its place until this step (placeVectors added to its input, in
   * full for the first half of the steps, fading to nothing over the second): a crutch for learning the read-out,
   * gone before the end, so the saved model is a plain LLaMA (`egret lab readout --give-place-until`; docs/LAB.md,
   * twelfth session).
   */
  placeCrutchUntil?: number;
  /** Weight of the place aid (placeAidLoss on layer `positionLayer`, absent: 0): the rows told to hold the crutch's vectors. */
  placeAid?: number;
  /**
   * Leave the ConvNeXt as stage 0 made it while the whole model trains (MRA models with stage 0 only). Trained on,
   * its last stage lost what stage 0 taught it: a fresh stage-0 head on the ConvNeXt after 800 whole-model steps
   * read 25.5 % of the characters in place after 200 steps, where stage 0 ended at 79 % (docs/LAB.md), while the
   * whole model's own reading head stayed near a loss of 2.1–2.6 — the new layers' early gradients through the
   * fusion rewrote what they could not yet use. LLaVA-HR's own stage 1 trains only the projector and the final
   * fusion around its frozen towers, and its stage 2 trains everything at a 50× lower rate (2e-5).
   */
  freezeConvnext?: boolean;
  /**
   * Leave the whole vision side — towers, adapters, fusion, projector — as stages 0 and 1 made it while the whole
   * model trains: the decoder learns to read tokens that hold still (LLaVA-1.5 trains its projector and LLM around
   * a frozen tower; here stage 1 trained the projector). Needs stage 1 (`tokenPath`) or `initFrom`.
   */
  freezeVision?: boolean;
  /**
   * Start the MR-Adapters as the identity, as LLaVA-HR does: their output projections at zero, set after every
   * fresh tensor is drawn (drawn at zero, they would shift the random stream of the tensors after them, the
   * ConvNeXt's among them, and so stage 0).
   */
  identityAdapters?: boolean;
  /** Start from this model folder's weights (a lab model saved with the same settings) instead of fresh ones. */
  initFrom?: string;
  /** Stage 0 (MRA models only): pretrain the ConvNeXt alone on crops first (pretrain-convnext.ts). */
  pretrain?: ConvnextPretrainSettings;
  /**
   * Stage 1 (MRA models with stage 0, a reading head and `visualRms`): after stage 0, the path from the ConvNeXt to
   * the visual tokens learns alone to carry what stage 0 reads, with the ViT's share of the final fusion at zero
   * (pretrain-tokens.ts), so that the decoder trains on readable tokens from its first step; the whole model's
   * reading head starts as stage 1's.
   */
  tokenPath?: TokenPathPretrainSettings;
  /**
   * Stage 2 (after stage 1 with `vectors`): the decoder alone, fresh, learns the read-out on the synthetic tokens
   * that stage 1 tells the visual tokens to be — `egret lab readout`'s code layout with the same vectors
   * (trainReadout) — and the whole model starts with it, its place crutch and place aid on the same place vectors.
   * The probe's decoder learnt that read-out where the whole model's never did (docs/LAB.md, fifteenth session).
   */
  readout?: ReadoutStageSettings;
  /** After stage 0, log how well it reads these whole task images (readingCeiling): what the whole model can reach. */
  stageZeroCheck?: { seed: number; count: number };
  /** Save the model every this many steps (and at the end). */
  saveEvery?: number;
  /**
   * Keep the training state here (stage 0's and the whole model's, every `saveEvery` steps), and resume from what
   * is found there: a run of hours stopped part-way goes on where it stood, drawing the batches it would have.
   */
  stateDir?: string;
  onPretrainStep?: (report: { step: number; steps: number; loss: number; accuracy: number; glyphs: number; lr: number; seconds: number }) => void;
  /** Stage 1's steps: `reading` its head's loss on the characters, `accuracy` the share it reads right. */
  onTokenPathStep?: (report: { step: number; steps: number; reading: number; accuracy: number; scale: number; vectors?: number; lr: number; seconds: number }) => void;
  /** Stage 2's reports, every 25 steps (means since the last). */
  onReadoutStep?: (report: ReadoutProbeReport & { steps: number }) => void;
  /**
   * `loss` is the answer's; `reading` the reading head's on the characters (reading.ts), `attention` the
   * attention aid's, `position` the position aid's, `place` the place aid's and `scale` the visual tokens' scale
   * aid's, when they are on.
   */
  onStep?: (report: { step: number; loss: number; reading?: number; attention?: number; position?: number; place?: number; scale?: number; lr: number; seconds: number }) => void;
  log?: (message: string) => void;
}

/** Trains and saves the model in `dir`; returns the seconds it trained (over all runs when resumed). */
export async function trainLabModel(dir: string, model: LabVisualModel, tokenizerModel: Uint8Array, opts: LabTrainOptions): Promise<{ seconds: number }> {
  const log = opts.log ?? (() => undefined);
  await writeModelFiles(dir, model, tokenizerModel);
  const tokenizer = await loadTokenizer(dir);
  const reading = opts.reading ?? 0;
  const attention = opts.attention ?? 0;
  const aidHeads = opts.attentionHeads ?? 1;
  const position = opts.positionAid ?? 0;
  const placeAid = opts.placeAid ?? 0;
  const crutch = opts.placeCrutchUntil;
  if (opts.readout && !opts.tokenPath?.vectors) throw new Error('readout (stage 2) needs stage 1 with vectors: it reads the tokens stage 1 tells the visual tokens to be');
  const tokenVectors = opts.readout ? readoutVectors(model.llm.hidden, opts.seed, { std: opts.tokenPath!.vectors, blocks: true }) : undefined;
  const places = crutch !== undefined || placeAid ? tokenVectors?.places ?? placeVectors(model.llm.hidden, new Rng(opts.seed)) : undefined;
  if (opts.freezeConvnext && (!model.convnext || !opts.pretrain)) throw new Error('freezeConvnext needs an MRA model with stage 0');
  if (opts.freezeVision && !opts.tokenPath && !opts.initFrom) throw new Error('freezeVision needs a trained vision side: stage 1 (tokenPath) or initFrom');
  const frozen = opts.freezeVision ? model.visionPrefixes : opts.freezeConvnext ? [model.convnext!.prefix + '.'] : [];
  if (opts.identityAdapters && !model.adapterProjections) throw new Error('identityAdapters needs an MRA model');
  if (opts.readingFromStageZero && (!opts.pretrain || !reading || opts.readingBlocks)) throw new Error('readingFromStageZero needs stage 0 and an unblocked reading head');
  if (opts.tokenPath && (!opts.pretrain || !reading || opts.readingBlocks || opts.readingFromStageZero || !opts.visualRms)) {
    throw new Error('tokenPath needs stage 0, an unblocked reading head that does not start as stage 0\'s, and visualRms');
  }
  const readingSpecs = opts.readingBlocks ? blockedReadingHeadSpecs : readingHeadSpecs;
  const specs = new Map([...model.specs, ...(reading ? readingSpecs(model.llm.hidden) : []), ...(position ? positionHeadSpecs(model.llm.hidden) : [])]);
  let source: TensorSource = freshTensors(specs, opts.seed);
  if (opts.identityAdapters) source = await zeroTensors(source, model.adapterProjections ?? []);
  if (opts.initFrom) source = await withWeightsOf(source, opts.initFrom, model.specs);
  if (opts.stateDir) await mkdir(opts.stateDir, { recursive: true });
  const statePath = opts.stateDir && join(opts.stateDir, 'train.safetensors');
  // A saved state of the whole model, with the frozen tensors kept beside it, holds every weight the stages would give it.
  const wholeSaved = statePath !== undefined && (await stat(statePath).catch(() => undefined)) !== undefined;
  let secondsBefore = 0;
  if (opts.pretrain && !wholeSaved) {
    let ceiling: ReadingCeiling | undefined;
    ({ source, seconds: secondsBefore, ceiling } = await pretrainConvnext(model, source, {
      ...opts.pretrain, seed: opts.seed, threads: opts.threads, log, check: opts.stageZeroCheck, keepReadingHead: opts.readingFromStageZero,
      onStep: (r) => opts.onPretrainStep?.({ ...r, steps: opts.pretrain!.steps }),
      ...(opts.stateDir ? { statePath: join(opts.stateDir, 'stage0.safetensors'), saveEvery: opts.saveEvery } : {}),
    }));
    if (ceiling) log(describeCeiling(ceiling));
    if (opts.tokenPath) {
      const stage1 = await pretrainTokenPath(model, source, {
        ...opts.tokenPath, seed: opts.seed, rms: opts.visualRms!, threads: opts.threads, log,
        onStep: (r) => opts.onTokenPathStep?.({ ...r, steps: opts.tokenPath!.steps }),
      });
      source = stage1.source;
      secondsBefore += stage1.seconds;
    }
    if (opts.readout) {
      const decoderSpecs = new Map([...model.specs].filter(([name]) => !model.visionPrefixes.some((prefix) => name.startsWith(prefix))));
      log(`stage 2: the decoder alone on stage 1's synthetic tokens, ${opts.readout.steps} steps of ${opts.readout.batch}`);
      const stage2 = await trainReadout({ llm: model.llm, specs: decoderSpecs, tokenizer }, {
        ...opts.readout, cells: model.visualTokens, layout: 'code', vectors: { std: opts.tokenPath!.vectors, blocks: true }, seed: opts.seed, threads: opts.threads,
      }, (r) => opts.onReadoutStep?.({ ...r, steps: opts.readout!.steps }));
      source = await replaceTensors(source, stage2.tensors);
      secondsBefore += stage2.reports.at(-1)?.seconds ?? 0;
    }
  }
  // The trainer's state holds what it trains; what the stages made and the whole model leaves frozen is kept beside
  // it, or a resumed run would go on around fresh tensors in their place.
  const frozenNames = new Set([...specs.keys()].filter((name) => frozen.some((prefix) => name.startsWith(prefix))));
  if (opts.stateDir && frozenNames.size) {
    const frozenPath = join(opts.stateDir, 'frozen.safetensors');
    if (wholeSaved) source = await withFrozenTensors(source, frozenPath, frozenNames);
    else await writeSafetensors(frozenPath, Object.fromEntries(await Promise.all([...frozenNames].map(async (name) => [name, { dtype: 'F32' as const, shape: source.info(name).shape, data: await source.readFloat32(name) }]))));
  }
  const forward = model.forward(source, crutch !== undefined ? 'places_in' : undefined);
  const g = forward.graph;
  const targets = g.input('targets', 'int64', ['batch', 'seq']);
  let loss = crossEntropy(forward.logits, targets, IGNORE);
  const metrics: string[] = [];
  if (reading || attention || position || placeAid || opts.visualRms) {
    g.output(loss, 'answer_loss');
    metrics.push('answer_loss');
  }
  if (reading) {
    const readingLoss = readingHeadLoss(g, source, forward.visual);
    g.output(readingLoss.characters, 'reading_loss');
    metrics.push('reading_loss');
    loss = op.add(loss, op.mul(op.add(readingLoss.characters, readingLoss.blanks), reading));
  }
  if (attention) {
    const attentionLoss = attentionAidLoss(forward.attention, opts.attentionLayer ?? -1, aidHeads);
    g.output(attentionLoss, 'attention_loss');
    metrics.push('attention_loss');
    loss = op.add(loss, op.mul(attentionLoss, attention));
  }
  if (position) {
    const positionLoss = positionAidLoss(g, source, forward.hidden, opts.positionLayer ?? 0);
    g.output(positionLoss, 'position_loss');
    metrics.push('position_loss');
    loss = op.add(loss, op.mul(positionLoss, position));
  }
  if (placeAid) {
    const placeLoss = placeAidLoss(forward.hidden, opts.positionLayer ?? 0);
    g.output(placeLoss, 'place_loss');
    metrics.push('place_loss');
    loss = op.add(loss, op.mul(placeLoss, placeAid));
  }
  if (opts.visualRms) {
    const scaleLoss = visualScaleLoss(forward.visual, opts.visualRms);
    g.output(scaleLoss, 'scale_loss');
    metrics.push('scale_loss');
    loss = op.add(loss, scaleLoss);
  }
  const training = buildTrainingGraph(g, loss, {
    trainable: (name) => name.split('+').every((part) => specs.has(part) && !frozenNames.has(part)),
    ...LAB_OPTIMIZATION,
  });
  const parameters = training.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  log(`${training.tensors.length} tensors, ${parameters} parameters; compiling the training step`);
  const trainer = await Trainer.create(training, { threads: opts.threads, metrics });
  const began = performance.now();
  const run = statePath ? await resumeTraining(statePath, trainer, opts.steps, secondsBefore) : undefined;
  const start = run?.start ?? 0;
  const trainedSeconds = () => run?.seconds() ?? secondsBefore + (performance.now() - began) / 1000;
  if (start > 0) log(`resuming at step ${start} from ${statePath}`);
  const { size: S, visualTokens: visual } = model;
  const grid = Math.round(Math.sqrt(visual));

  const batchAt = async (step: number) => {
    const indices = Array.from({ length: opts.batchSize }, (_, b) => step * opts.batchSize + b);
    const ease = opts.ease && opts.easeSteps ? opts.ease * Math.max(0, 1 - step / opts.easeSteps) : 0;
    const samples = await Promise.all(indices.map((i) => renderSmallPrint(opts.seed, i, ease)));
    const pixels = new Float32Array(indices.length * 3 * S * S);
    const examples: Example[] = [];
    const cells = new BigInt64Array(indices.length * visual * READING_SLOTS);
    const codeCells: number[][] = [];
    for (const [b, s] of samples.entries()) {
      pixels.set(model.preprocess(await decodeImage(s.png)), b * 3 * S * S);
      examples.push(smallPrintExample(tokenizer, s.question, s.code, s.index % 2 === 0));
      cells.set(Array.from(readingTargets(s, grid, opts.readingBlanks), BigInt), b * visual * READING_SLOTS);
      codeCells.push(characterCells(s, grid));
    }
    return { pixels, examples, cells, codeCells };
  };

  let next = start < opts.steps ? batchAt(start) : undefined;
  for (let step = start; step < opts.steps; step++) {
    const started = performance.now();
    const { pixels, examples, cells, codeCells } = await next!;
    if (step + 1 < opts.steps) next = batchAt(step + 1);
    const B = examples.length;
    const firstOnly = step < (opts.firstCharacterSteps ?? 0);
    const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
    const feeds = answerFeeds(examples, visual, firstOnly, attention ? { heads: aidHeads, cell: (b, k) => codeCells[b]![k]!, sink: opts.attentionSink } : undefined, position > 0);
    const seq = feeds['targets']!.dims[1]!;
    const result = await trainer.run({
      ...feeds,
      ...(places && crutch !== undefined ? { places_in: placeRows(examples, visual, seq, places, placeStrength(step, crutch)) } : {}),
      ...(places && placeAid ? { place_targets: placeRows(examples, visual, seq, places), place_rows: codeRowMask(examples, visual, seq) } : {}),
      pixel_values: new ort.Tensor('float32', pixels, [B, 3, S, S]),
      ...(reading ? { reading_targets: new ort.Tensor('int64', cells, [B, visual, READING_SLOTS]) } : {}),
    }, lr);
    const seconds = (performance.now() - started) / 1000;
    const m = result.metrics;
    opts.onStep?.({ step: step + 1, loss: m['answer_loss'] ?? result.loss, reading: m['reading_loss'], attention: m['attention_loss'], position: m['position_loss'], place: m['place_loss'], scale: m['scale_loss'], lr, seconds });
    if ((opts.saveEvery && (step + 1) % opts.saveEvery === 0) || step + 1 === opts.steps) {
      await saveModel(dir, trainer, g, source, model.specs);
      await run?.save();
    }
  }
  await trainer.dispose();
  return { seconds: trainedSeconds() };
}

function describeCeiling(c: ReadingCeiling): string {
  const percent = (share: number) => `${(100 * share).toFixed(1)} %`;
  const sizes = c.byCapHeight.map((s) => `${s.capHeight} px ${percent(s.share)} of ${s.characters}`).join(', ');
  return `stage 0 on ${c.images} held-out task images: ${percent(c.characters)} of the characters read in place (by cap height: ${sizes}), ` +
    `${percent(c.codes)} of the codes whole — the most the whole model can answer; ${c.falseCells.toFixed(1)} cells an image without a code character read as one`;
}

/** `source` with the frozen tensors `names` as a stopped run kept them at `path`. */
async function withFrozenTensors(source: TensorSource, path: string, names: ReadonlySet<string>): Promise<MemorySource> {
  if (!(await stat(path).catch(() => undefined))) throw new Error(`${path} is missing: the saved training state beside it cannot be resumed without the frozen tensors it trained around (remove its folder to train again)`);
  return withWeightsOf(source, path, names);
}

/** `fresh` with the tensors `names` replaced by those saved in `dir` (a model folder or a checkpoint file), their shapes checked (the training aids' heads stay fresh). */
async function withWeightsOf(fresh: TensorSource, dir: string, names: { has(name: string): boolean }): Promise<MemorySource> {
  const saved = await openCheckpoint(dir);
  const all: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  try {
    for (const t of fresh.list()) {
      if (names.has(t.name) && saved.info(t.name).shape.join() !== t.shape.join()) throw new Error(`${dir}: ${t.name} is ${saved.info(t.name).shape.join('×')}, the model's is ${t.shape.join('×')}`);
      all[t.name] = { shape: t.shape, data: Float32Array.from(await (names.has(t.name) ? saved : fresh).readFloat32(t.name)) };
    }
  } finally {
    await saved.close();
  }
  return new MemorySource(all);
}

/** pytorch_model.bin with the model's tensors under their checkpoint names, as trained (no reading head). */
async function saveModel(dir: string, trainer: Trainer, graph: Graph, source: TensorSource, specs: ReadonlyMap<string, TensorSpec>): Promise<void> {
  const trained = new Map(trainer.tensors.map((t) => [t.name, trainer.param(t.name) as Float32Array]));
  const tensors = checkpointTensors(graph, trained, (name) => source.info(name).shape);
  for (const name of tensors.keys()) if (!specs.has(name)) tensors.delete(name);
  // Tensors the forward pass never reads (the ViT's post_layernorm, under select_layer -2) keep their fresh values:
  // the checkpoint has every tensor of its family's layout, as strict loaders expect.
  for (const name of specs.keys()) if (!tensors.has(name)) tensors.set(name, await source.readFloat32(name));
  await writeStateDict(dir, tensors, source);
}

async function writeStateDict(dir: string, tensors: ReadonlyMap<string, Float32Array>, shapes: TensorSource): Promise<void> {
  const state: Record<string, ReturnType<typeof tensor>> = {};
  for (const name of [...tensors.keys()].sort()) state[name] = tensor('F32', shapes.info(name).shape, tensors.get(name)!);
  // torchSave writes a temporary file and renames it: a reader never sees half a checkpoint.
  await torchSave(join(dir, 'pytorch_model.bin'), { kind: 'ordered', entries: state }, 'pytorch_model');
}

async function writeModelFiles(dir: string, model: LabVisualModel, tokenizerModel: Uint8Array): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(model.configJson, null, 2)}\n`);
  await writeFile(join(dir, 'tokenizer.model'), tokenizerModel);
}

/** The model as training would start it, saved untrained (for what costs do not depend on: time, FLOPs). */
export async function saveFreshModel(dir: string, model: LabVisualModel, tokenizerModel: Uint8Array, seed: number): Promise<void> {
  await writeModelFiles(dir, model, tokenizerModel);
  const source = freshTensors(model.specs, seed);
  const tensors = new Map<string, Float32Array>();
  for (const name of model.specs.keys()) tensors.set(name, await source.readFloat32(name));
  await writeStateDict(dir, tensors, source);
}
