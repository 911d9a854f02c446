/**
 * The lab's MRA and VTW claims in miniature (docs/LAB.md): a LLaVA-HR (MRA: low-resolution ViT + high-resolution
 * ConvNeXt) against a LLaVA-1.5 whose ViT alone sees the low-resolution image, with the same number of visual
 * tokens, both trained from scratch on the small-print task and scored on held-out seeds; the time to first token
 * of MRA against a plain ViT that reads the image at MRA's resolution (its token count grows with it); and VTW on
 * the MRA model at the layer its KL calibration picks.
 *
 * Trained models are kept in a cache folder, one per settings (a changed setting trains anew); a model folder
 * holds `lab.json` (its settings, training time and machine) once training has finished.
 */
import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { readFile, rm, stat } from 'node:fs/promises';
import { writeFileAtomically } from '../io/file.js';
import { join } from 'node:path';
import { isObject } from '../io/json.js';
import { generateAll } from '../generate/generate.js';
import { calibrateVtw } from '../methods/vtw-calibrate.js';
import { loadModel, type ChatModel } from '../models/index.js';
import { decodeImage } from '../vision/decode.js';
import { EGRET_VERSION } from '../version.js';
import { writeModelCard } from './card.js';
import { labTokenizerModel } from './datasets.js';
import { scoreSmallPrint, smallPrintPromptIds, type SmallPrintScore } from './evaluate.js';
import { LAB_INIT, labLlavaHrModel, labLlavaModel, type LabLlavaHrShape, type LabShape, type LabVisualModel } from './models.js';
import { renderSmallPrint } from './smallprint.js';
import { saveFreshModel, trainLabModel, type LabTrainOptions } from './train-visual.js';

export type TrainSettings = Pick<LabTrainOptions, 'seed' | 'steps' | 'batchSize' | 'lr' | 'warmup' | 'ease' | 'easeSteps' | 'reading' | 'readingBlocks' | 'readingBlanks' | 'readingFromStageZero' | 'visualRms' | 'attention' | 'attentionHeads' | 'attentionLayer' | 'firstCharacterSteps' | 'attentionSink' | 'positionAid' | 'positionLayer' | 'placeCrutchUntil' | 'placeAid' | 'freezeConvnext' | 'freezeVision' | 'identityAdapters' | 'pretrain' | 'tokenPath' | 'readout'>;

export interface MraLabPlan {
  tokenizer: { seed: number; count: number; vocab: number };
  mra: { shape: LabLlavaHrShape; train: TrainSettings };
  lowres: { shape: LabShape; train: TrainSettings };
  /** A ViT alone at MRA's resolution, for the cost of reading the image that way (not trained: only timed). */
  naive: LabShape;
  /** Held-out samples: this seed, this many; VTW calibrates on the first `calibration` of another held-out seed. */
  heldOutSeed: number;
  evalCount: number;
  calibrationSeed: number;
  calibration: number;
  /** VTW's KL threshold (the official 0.003 is for 32-layer models' first-token distributions). */
  eta: number;
}

export interface ModelRecord {
  dir: string;
  settings: unknown;
  trainingSeconds: number;
  machine: string;
  parameters?: number;
  finalLoss?: number;
}

export interface MraLabResults {
  mra: SmallPrintScore & { model: ModelRecord; visualTokens: number };
  lowres: SmallPrintScore & { model: ModelRecord; visualTokens: number };
  /** Time to first token of one held-out image (median of three), ms, and the visual tokens it costs. */
  firstToken: { mraMs: number; naiveMs: number; mraTokens: number; naiveTokens: number };
  vtw: { layer: number | undefined; kl: Record<string, number>; eta: number; off: SmallPrintScore; on?: SmallPrintScore };
}

export interface LabContext {
  cacheDir: string;
  /** The models that ship with egret (lab-mra/, lab-lowres/), used when their settings are the plan's. */
  shippedDir?: string;
  threads?: number;
  log: (message: string) => void;
  /** Called with (what, done, total) as long work goes on. */
  progress?: (what: string, done: number, total: number) => void;
}

/** This machine in a few words, for model cards and tables. */
export function machineDescription(): string {
  const list = cpus();
  return `${list.length} × ${list[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.versions.node}`;
}

function settingsKey(value: unknown): string {
  return createHash('sha256').update(JSON.stringify([EGRET_VERSION, value])).digest('hex').slice(0, 16);
}

function labModelSettings(model: LabVisualModel, tokenizer: MraLabPlan['tokenizer'], train: TrainSettings): unknown {
  return { family: model.family, config: model.configJson, init: LAB_INIT, tokenizer, train };
}

/** The finished model `name` of these settings: shipped with egret, or in the cache folder; undefined if neither. */
async function findLabModel(ctx: LabContext, name: string, settings: unknown): Promise<ModelRecord | undefined> {
  const key = settingsKey(settings);
  for (const dir of [...(ctx.shippedDir ? [join(ctx.shippedDir, `lab-${name}`)] : []), join(ctx.cacheDir, `${name}-${key}`)]) {
    const record = await readRecord(dir);
    if (record && settingsKey(record.settings) === key) return record;
  }
  return undefined;
}

/** Whether both of the plan's trained models are at hand (shipped or cached). */
export async function hasLabModels(ctx: LabContext, plan: MraLabPlan): Promise<boolean> {
  const found = await Promise.all([
    findLabModel(ctx, 'mra', labModelSettings(labLlavaHrModel(plan.mra.shape), plan.tokenizer, plan.mra.train)),
    findLabModel(ctx, 'lowres', labModelSettings(labLlavaModel(plan.lowres.shape), plan.tokenizer, plan.lowres.train)),
  ]);
  return found.every((r) => r !== undefined);
}

/** Held-out images stage 0's reading is checked on (≈ 0.5 s each at 1024 px on one thread). */
const STAGE_ZERO_CHECK = 50;

/** Steps between saves of a training model and its state (≈ 4–10 minutes of the full plan). */
const SAVE_EVERY = 100;

/** The finished model for these settings (shipped or cached), or trained into the cache folder now. */
export async function labModel(ctx: LabContext, name: string, model: LabVisualModel, tokenizer: MraLabPlan['tokenizer'], train: TrainSettings,
  stageZeroCheck?: LabTrainOptions['stageZeroCheck']): Promise<ModelRecord> {
  const settings = labModelSettings(model, tokenizer, train);
  const found = await findLabModel(ctx, name, settings);
  if (found) {
    ctx.log(`${name}: reusing ${found.dir}`);
    return found;
  }
  const dir = join(ctx.cacheDir, `${name}-${settingsKey(settings)}`);
  // A run of these settings stopped part-way left its state here: go on from it (the folder's name is the settings').
  const stateDir = join(dir, 'resume');
  const resuming = (await stat(stateDir).catch(() => undefined)) !== undefined;
  if (!resuming) await rm(dir, { recursive: true, force: true });
  ctx.log(`${name}: ${resuming ? 'resuming' : 'training'} (${train.steps} steps of ${train.batchSize}) in ${dir}`);
  let finalLoss: number | undefined;
  let parameters: number | undefined;
  const { seconds } = await trainLabModel(dir, model, labTokenizerModel(tokenizer.seed, tokenizer.count, tokenizer.vocab), {
    ...train,
    stageZeroCheck,
    threads: ctx.threads,
    saveEvery: SAVE_EVERY,
    stateDir,
    log: (m) => {
      const count = /(\d+) parameters/.exec(m);
      if (count) parameters = Number(count[1]);
      ctx.log(`${name}: ${m}`);
    },
    onPretrainStep: (r) => ctx.progress?.(`stage 0: ${name}'s ConvNeXt (reading loss ${r.loss.toFixed(3)}, ${(100 * r.accuracy).toFixed(1)} % of characters read in place, ${(100 * r.glyphs).toFixed(1)} % of glyphs)`, r.step, r.steps),
    onTokenPathStep: (r) => ctx.progress?.(`stage 1: ${name}'s token path (reading loss ${r.reading.toFixed(3)}, ${(100 * r.accuracy).toFixed(1)} % of characters read in place${r.vectors === undefined ? '' : `, vector error ${r.vectors.toFixed(3)}`})`, r.step, r.steps),
    onReadoutStep: (r) => ctx.progress?.(`stage 2: ${name}'s decoder on synthetic tokens (answer ${r.answer.toFixed(3)}${r.attention === undefined ? '' : `, attention ${r.attention.toFixed(3)}`})`, r.step, r.steps),
    onStep: (r) => {
      finalLoss = r.loss;
      ctx.progress?.(`training ${name} (loss ${r.loss.toFixed(3)}${r.reading === undefined ? '' : `, reading ${r.reading.toFixed(3)}`}${r.attention === undefined ? '' : `, attention ${r.attention.toFixed(3)}`}${r.position === undefined ? '' : `, position ${r.position.toFixed(3)}`}${r.place === undefined ? '' : `, place ${r.place.toExponential(2)}`}${r.scale === undefined ? '' : `, scale ${r.scale.toFixed(3)}`})`, r.step, train.steps);
    },
  });
  const record: ModelRecord = { dir, settings, trainingSeconds: Math.round(seconds), machine: machineDescription(), parameters, finalLoss };
  await writeFileAtomically(join(dir, 'lab.json'), `${JSON.stringify(record, null, 2)}\n`);
  await rm(stateDir, { recursive: true, force: true });
  return record;
}

async function readRecord(dir: string): Promise<ModelRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(join(dir, 'lab.json'), 'utf8')) as unknown;
    return isObject(record) ? { ...(record as unknown as ModelRecord), dir } : undefined;
  } catch {
    return undefined;
  }
}

/** Median time to first token (image decoding and encoding, prefill, the first token) of held-out image 0, ms. */
async function firstTokenMs(model: ChatModel, seed: number): Promise<number> {
  const sample = await renderSmallPrint(seed, 0);
  const ids = smallPrintPromptIds(model, sample.question);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const prompt = await model.prepare(ids, [await decodeImage(sample.png)]);
    await generateAll(model, [prompt], { maxNewTokens: 1, temperature: 0 });
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[1]!;
}

/** Cards for the models this run trained (a shipped model keeps the card it shipped with). */
async function writeCards(ctx: LabContext, plan: MraLabPlan, mra: ModelRecord, mraScore: SmallPrintScore, lowres: ModelRecord, lowresScore: SmallPrintScore): Promise<void> {
  const { vit, llm } = plan.mra.shape;
  const towers = `a ${vit.layers}-layer, ${vit.width}-wide CLIP ViT at ${vit.imageSize} px (patch ${vit.patch}, ${(vit.imageSize / vit.patch) ** 2} visual tokens)`;
  const decoder = `a ${llm.layers}-layer, ${llm.width}-wide LLaMA`;
  const task = 'It answers "What is the code?" about an image with a code printed small among distractors (the lab\'s small-print task, docs/LAB.md).';
  const shipped = (dir: string) => ctx.shippedDir !== undefined && dir.startsWith(ctx.shippedDir);
  if (!shipped(mra.dir)) {
    await writeModelCard({
      title: 'egret lab MRA model: a tiny LLaVA-HR trained from scratch to read small print',
      description: `LLaVA-HR's original layout: ${towers} and a ConvNeXt at ${plan.mra.shape.imageSize} px joined by MR-Adapters, ${decoder}. ${task}`,
      record: mra, heldOutSeed: plan.heldOutSeed, score: mraScore,
    });
  }
  if (!shipped(lowres.dir)) {
    await writeModelCard({
      title: 'egret lab low-resolution model: a tiny LLaVA-1.5 trained from scratch (the MRA model\'s baseline)',
      description: `llava-hf's layout: ${towers}, ${decoder}; the MRA model without its high-resolution path, the same number of visual tokens. ${task}`,
      record: lowres, heldOutSeed: plan.heldOutSeed, score: lowresScore,
    });
  }
}

export async function runMraLab(ctx: LabContext, plan: MraLabPlan): Promise<MraLabResults> {
  const mraModel = labLlavaHrModel(plan.mra.shape);
  const lowresModel = labLlavaModel(plan.lowres.shape);
  const mraRecord = await labModel(ctx, 'mra', mraModel, plan.tokenizer, plan.mra.train, { seed: plan.heldOutSeed, count: STAGE_ZERO_CHECK });
  const lowresRecord = await labModel(ctx, 'lowres', lowresModel, plan.tokenizer, plan.lowres.train);

  const score = async (model: ChatModel, what: string, vtwLayer?: number) =>
    scoreSmallPrint(model, { seed: plan.heldOutSeed, count: plan.evalCount, vtwLayer, onProgress: (done) => ctx.progress?.(what, done, plan.evalCount) });
  const load = (dir: string) => loadModel(dir, { threads: ctx.threads });

  const mra = await load(mraRecord.dir);
  let results: Omit<MraLabResults, 'lowres' | 'firstToken'>;
  let mraFirst: number;
  try {
    const off = await score(mra, 'scoring MRA');
    const calibration = [];
    for (let i = 0; i < plan.calibration; i++) {
      const sample = await renderSmallPrint(plan.calibrationSeed, i);
      calibration.push(await mra.prepare(smallPrintPromptIds(mra, sample.question), [await decodeImage(sample.png)]));
    }
    const found = await calibrateVtw(mra.decoder, calibration, { minLayer: 1, eta: plan.eta, onProgress: (done, total) => ctx.progress?.('calibrating VTW', done, total) });
    const on = found.layer === undefined ? undefined : await score(mra, `scoring MRA with VTW at K=${found.layer}`, found.layer);
    results = {
      mra: { ...off, model: mraRecord, visualTokens: mraModel.visualTokens },
      vtw: { layer: found.layer, kl: Object.fromEntries([...found.kl].map(([k, v]) => [String(k), v])), eta: plan.eta, off, on },
    };
    mraFirst = await firstTokenMs(mra, plan.heldOutSeed);
  } finally {
    await mra.dispose();
  }
  const lowres = await load(lowresRecord.dir);
  let lowresScore: SmallPrintScore;
  try {
    lowresScore = await score(lowres, 'scoring low-res');
  } finally {
    await lowres.dispose();
  }
  await writeCards(ctx, plan, mraRecord, results.mra, lowresRecord, lowresScore);
  const naiveModel = labLlavaModel(plan.naive);
  const naiveDir = join(ctx.cacheDir, `naive-${settingsKey(naiveModel.configJson)}`);
  if (!(await readRecord(naiveDir))) {
    await rm(naiveDir, { recursive: true, force: true });
    // Fresh weights: only its cost is measured, which training would not change.
    await saveFreshModel(naiveDir, naiveModel, labTokenizerModel(plan.tokenizer.seed, plan.tokenizer.count, plan.tokenizer.vocab), 0);
    await writeFileAtomically(join(naiveDir, 'lab.json'), `${JSON.stringify({ settings: naiveModel.configJson, trainingSeconds: 0, machine: machineDescription() })}\n`);
  }
  const naive = await load(naiveDir);
  let naiveFirst: number;
  try {
    naiveFirst = await firstTokenMs(naive, plan.heldOutSeed);
  } finally {
    await naive.dispose();
  }
  return {
    ...results,
    lowres: { ...lowresScore, model: lowresRecord, visualTokens: lowresModel.visualTokens },
    firstToken: { mraMs: mraFirst, naiveMs: naiveFirst, mraTokens: mraModel.visualTokens, naiveTokens: naiveModel.visualTokens },
  };
}
