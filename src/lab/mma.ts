/**
 * MMA (LaVIN, "Cheap and Quick") in miniature: a tiny LLaMA trained from scratch on the lab's language, a tiny
 * CLIP-style ViT pretrained on the lab's pictures, and LaVIN's MM-Adapters trained on the frozen pair with
 * `egret train lavin` on the ScienceQA-like task, text-only and image problems mixed; then evaluated on a held-out
 * seed with `egret eval run|score scienceqa` — split into text-only and image questions, against chance and against
 * the frozen model whose adapters are as LaVIN initialises them (zero up-projections: the identity) — and with VTW
 * at the layer `egret calibrate vtw` picks. The commands run as child processes, exactly as a user runs them.
 *
 * Trained models are kept in `cacheDir`, each in a folder named by a hash of everything that made it, and reused.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requestFlops } from '../generate/flops.js';
import { generateAll } from '../generate/generate.js';
import { openCheckpointFile } from '../io/checkpoint.js';
import { withdrawVisualTokens } from '../methods/vtw.js';
import { loadModel } from '../models/index.js';
import { IMAGE_TOKEN_INDEX, tokenizeImagePrompt } from '../text/image-prompt.js';
import { loadTokenizer } from '../text/load.js';
import { renderPrompt, scienceQaPrompt } from '../text/templates.js';
import { LAVIN_TRAIN_DEFAULTS, LavinRun, runCheckpoints } from '../train/lavin.js';
import { readScienceQa } from '../train/scienceqa.js';
import { loadImage } from '../vision/decode.js';
import { labTokenizerModel, writeScienceQaDataset } from './datasets.js';
import { scienceQaSample } from './scienceqa.js';
import { TINY_CLIP_FILE, trainTinyClip, type TinyClipReport, type TinyClipShape } from './tiny-clip.js';
import type { TinyLlamaShape } from './tiny-llama.js';
import { answerAccuracy, heldOutLoss, labLmSequences, trainTinyLlama, type AnswerAccuracy, type TinyLlamaTrainReport } from './train-llama.js';

export interface MmaLabOptions {
  /** Where the evaluation's files and results.json go (an `mma/` folder is made in it). */
  outDir: string;
  /** Where trained models and generated data are kept and reused. */
  cacheDir: string;
  quick?: boolean;
  /** Seed of the training data and the models; the held-out data is seed + 1. Default 0. */
  seed?: number;
  threads?: number;
  /** How the ViT is made: pretrained on the lab's pictures (default) or left as initialised. */
  vit?: 'pretrained' | 'random';
  log?: (message: string) => void;
}

/** Everything that decides what a run trains and measures. */
export interface MmaSettings {
  tokenizer: { count: number; vocab: number };
  /** `attention`: the answer aids' weight (train-llama.ts). */
  llama: { shape: TinyLlamaShape; steps: number; batchSize: number; lr: number; warmup: number; attention: number };
  clip: { shape: TinyClipShape; steps: number; batchSize: number; lr: number; warmup: number };
  /** Samples generated for training (80 % land in the train split) and for the held-out evaluation (its test split, ~10 %). */
  data: { train: number; heldOut: number };
  /** `egret train lavin` options. */
  lavin: { batchSize: number; accumIter: number; epochs: number; warmupEpochs: number; lr: number };
  /** Calibration samples for VTW (image problems of the training seed's val split). */
  vtwSamples: number;
}

export const MMA_SETTINGS: Record<'quick' | 'full', MmaSettings> = {
  quick: {
    tokenizer: { count: 2000, vocab: 1024 },
    llama: { shape: { width: 64, layers: 2, heads: 2, vocab: 1024, multipleOf: 32 }, steps: 150, batchSize: 16, lr: 5e-3, warmup: 15, attention: 1 },
    clip: { shape: { width: 64, layers: 6, heads: 2, patch: 14, imageSize: 112, embedDim: 64 }, steps: 60, batchSize: 32, lr: 2e-3, warmup: 6 },
    data: { train: 1000, heldOut: 2000 },
    lavin: { batchSize: 8, accumIter: 1, epochs: 2, warmupEpochs: 0.2, lr: 3e-3 },
    vtwSamples: 16,
  },
  full: {
    tokenizer: { count: 2000, vocab: 1024 },
    llama: { shape: { width: 128, layers: 4, heads: 4, vocab: 1024, multipleOf: 64 }, steps: 3000, batchSize: 16, lr: 3e-3, warmup: 60, attention: 1 },
    // 2000 steps, not 200: LaVIN's adapters then answered 48.4 % of the image questions instead of 40.8 % (chance 43.2 %).
    clip: { shape: { width: 96, layers: 6, heads: 3, patch: 14, imageSize: 112, embedDim: 96 }, steps: 2000, batchSize: 32, lr: 2e-3, warmup: 100 },
    data: { train: 4000, heldOut: 4000 },
    // 6 epochs, not 2 (LaVIN's ScienceQA script trains 20): with the 2000-step CLIP, 50.7 % of the held-out image
    // questions instead of 48.4 % (chance 43.2 %), 65.1 % of all (docs/LAB.md, 2026-12-06).
    lavin: { batchSize: 8, accumIter: 1, epochs: 6, warmupEpochs: 0.2, lr: 3e-3 },
    vtwSamples: 32,
  },
};

/** Accuracy (0–1) over the held-out test split's text-only and image questions, and over all of them. */
export interface SplitAccuracy {
  text: number;
  image: number;
  all: number;
}

export interface MmaResults {
  mode: 'quick' | 'full';
  seed: number;
  heldOutSeed: number;
  threads: number;
  settings: MmaSettings;
  vit: 'pretrained' | 'random';
  questions: { text: number; image: number };
  /** `answers`: held-out problems answered from their text, a picture as its description (answerAccuracy). */
  llama: TinyLlamaTrainReport & { heldOutLoss: number; heldOutPerplexity: number; answers: AnswerAccuracy; sample: { prompt: string; continuation: string }; reused: boolean };
  clip: TinyClipReport & { reused: boolean };
  adapters: { trainableParameters: number; seconds: number; updates: number; checkpoint: string; reused: boolean };
  /** Mean of 1 / #choices. */
  chance: SplitAccuracy;
  /** The frozen LLaMA and CLIP with LaVIN's initial adapters (zero up-projections: identity; projector untrained). */
  frozen: SplitAccuracy;
  lavin: SplitAccuracy;
  vtw: {
    /** The calibrated withdrawal layer (null: none met eta); the decoder's layer count beside it. */
    layer: number | null;
    layers: number;
    kl: Record<string, number>;
    accuracy: SplitAccuracy | null;
    /** Mean prefill matrix FLOPs of an image question: the decoder's, and with CLIP and the projector. */
    prefillFlops: { decoder: number; decoderVtw: number; total: number; totalVtw: number } | null;
  };
  /** The commands that trained and evaluated, as run (paths as on this machine). */
  commands: string[];
}

/** Names the tiny LLaMA's corpus (labLmSequences) in its cache key: change it when that text changes. */
const LM_CORPUS = 'qcm-ale+qcm-a, captions, small print';
/** Held-out problems the tiny LLaMA answers from their text alone (a picture as its description). */
const ANSWERS_ASKED = 400;

const BIN = fileURLToPath(new URL('../../../bin/egret', import.meta.url));

/** Runs `egret ARGS` as a child process; its stderr goes to `log`, line by line. Resolves to its stdout. */
function egret(args: string[], log: (message: string) => void, commands: string[]): Promise<string> {
  commands.push(`egret ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim()) log(`  ${line}`);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`egret ${args.slice(0, 2).join(' ')} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/**
 * A model or dataset kept in `cacheDir`: folder `<kind>-<hash of key>` holding report.json once complete. Built in
 * a temporary folder and renamed, so that an interrupted build is never reused.
 */
async function cached<T>(cacheDir: string, kind: string, key: unknown, build: (dir: string) => Promise<T>): Promise<{ dir: string; report: T; reused: boolean; key: string }> {
  const hash = createHash('sha256').update(JSON.stringify([kind, key])).digest('hex').slice(0, 16);
  const dir = join(cacheDir, `${kind}-${hash}`);
  const reportPath = join(dir, 'report.json');
  if (existsSync(reportPath)) return { dir, report: JSON.parse(await readFile(reportPath, 'utf8')) as T, reused: true, key: hash };
  await rm(dir, { recursive: true, force: true });
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(cacheDir, { recursive: true });
  const report = await build(partial);
  await writeFile(join(partial, 'report.json'), `${JSON.stringify(report, null, 1)}\n`);
  await rename(partial, dir);
  return { dir, report, reused: false, key: hash };
}

/** Mean of 1 / #choices over the split's text-only and image problems. */
function chanceAccuracy(data: string, split: string): SplitAccuracy {
  const problems = readScienceQa(data, split);
  const mean = (ps: typeof problems) => ps.reduce((s, p) => s + 1 / p.choices.length, 0) / ps.length;
  return { text: mean(problems.filter((p) => p.image === undefined)), image: mean(problems.filter((p) => p.image !== undefined)), all: mean(problems) };
}

/** `egret eval score --json`'s figures as text-only / image / all: IMG is the image questions' accuracy. */
function splitScore(score: { count: number; correct: number; categories: { IMG: number | null } }, images: number): SplitAccuracy {
  const imageCorrect = Math.round((score.categories.IMG ?? 0) * images);
  return { text: (score.correct - imageCorrect) / (score.count - images), image: score.categories.IMG ?? 0, all: score.correct / score.count };
}

export async function runMmaLab(opts: MmaLabOptions): Promise<MmaResults> {
  const mode = opts.quick ? 'quick' : 'full';
  const settings = MMA_SETTINGS[mode];
  const seed = opts.seed ?? 0;
  const heldOutSeed = seed + 1;
  const threads = opts.threads ?? availableParallelism();
  const vit = opts.vit ?? 'pretrained';
  const log = opts.log ?? (() => undefined);
  const out = join(opts.outDir, 'mma');
  await mkdir(out, { recursive: true });
  const commands: string[] = [];
  const t = ['--threads', String(threads)];

  // Data: the training seed's problems and the held-out seed's.
  const dataset = (s: number, count: number) => cached(opts.cacheDir, 'sqa', { seed: s, count }, async (dir) => {
    log(`generating ${count} ScienceQA-like problems of seed ${s}`);
    await writeScienceQaDataset(dir, { seed: s, count });
    return { seed: s, count };
  });
  const train = await dataset(seed, settings.data.train);
  const heldOut = await dataset(heldOutSeed, settings.data.heldOut);
  const heldOutSequences = async (dir: string) => {
    const tokenizer = await loadTokenizer(dir);
    return Array.from({ length: 50 }, (_, i) => labLmSequences(tokenizer, heldOutSeed, i).map((s) => s.ids)).flat();
  };

  // The tiny LLaMA.
  const llama = await cached(opts.cacheDir, 'tiny-llama', { seed, corpus: LM_CORPUS, tokenizer: settings.tokenizer, llama: settings.llama }, async (dir) => {
    const tokenizer = labTokenizerModel(seed, settings.tokenizer.count, settings.tokenizer.vocab);
    const { shape, ...train } = settings.llama;
    const { report } = await trainTinyLlama(dir, shape, tokenizer, { ...train, seed, threads, log });
    const loss = await heldOutLoss(dir, await heldOutSequences(dir), threads);
    const answers = await answerAccuracy(dir, heldOutSeed, ANSWERS_ASKED, threads);
    return { ...report, heldOutLoss: loss, heldOutPerplexity: Math.exp(loss), answers, sample: await greedySample(dir, heldOutSeed, threads) };
  });
  const answers = llama.report.answers;
  log(`tiny LLaMA ${llama.reused ? '(reused)' : ''}: held-out perplexity ${llama.report.heldOutPerplexity.toFixed(2)}; ` +
    `answers from the text ${answers.right}/${answers.asked} (chance ${answers.chance.toFixed(0)})`);

  // The tiny CLIP.
  const clip = await cached(opts.cacheDir, 'tiny-clip', { seed, vit, clip: settings.clip }, async (dir) => {
    const { shape, ...train } = settings.clip;
    return trainTinyClip(dir, shape, { ...train, steps: vit === 'pretrained' ? train.steps : 0, seed, threads, log });
  });
  const clipFile = join(clip.dir, TINY_CLIP_FILE);

  // LaVIN's adapters, with `egret train lavin`.
  const l = settings.lavin;
  const lavinArgs = ['--batch-size', String(l.batchSize), '--accum-iter', String(l.accumIter), '--epochs', String(l.epochs), '--warmup-epochs', String(l.warmupEpochs),
    '--lr', String(l.lr), '--seed', String(seed)];
  const adapters = await cached(opts.cacheDir, 'lavin', { llama: llama.key, clip: clip.key, data: train.key, args: lavinArgs }, async (dir) => {
    const started = performance.now();
    await egret(['train', 'lavin', '--model', llama.dir, '--clip', clipFile, '--data', train.dir, '--out', dir, ...lavinArgs, ...t], log, commands);
    const seconds = (performance.now() - started) / 1000;
    const checkpoint = (await runCheckpoints(dir)).at(-1)!;
    const source = await openCheckpointFile(join(dir, checkpoint));
    const trainableParameters = source.list().filter((x) => x.name.startsWith('model.')).reduce((n, x) => n + x.shape.reduce((a, b) => a * b, 1), 0);
    await source.close();
    const csv = (await readFile(join(dir, 'loss.csv'), 'utf8')).trim().split('\n');
    return { trainableParameters, seconds, updates: csv.length - 1, checkpoint };
  });
  const checkpoint = join(adapters.dir, adapters.report.checkpoint);

  // LaVIN's initial adapters: what the frozen model answers before any training.
  const identity = join(out, 'identity-adapters.pth');
  const run = await LavinRun.open({ model: llama.dir, clip: clipFile, data: train.dir }, { ...LAVIN_TRAIN_DEFAULTS, seed, threads });
  await run.save(identity).finally(() => run.dispose());

  const images = readScienceQa(heldOut.dir, 'test').filter((p) => p.image !== undefined).length;
  const evaluate = async (name: string, adapter: string, vtwLayer: string): Promise<SplitAccuracy> => {
    const predictions = join(out, `answers-${name}.jsonl`);
    await rm(predictions, { force: true });
    await egret(['eval', 'run', 'scienceqa', '--model', llama.dir, '--clip', clipFile, '--adapter', adapter, '--data', heldOut.dir, '--images', join(heldOut.dir, 'images', 'test'),
      '--split', 'test', '--out', predictions, '--batch', '8', '--vtw-layer', vtwLayer, '--no-cache', ...t], log, commands);
    const score = JSON.parse(await egret(['eval', 'score', 'scienceqa', '--data', heldOut.dir, '--predictions', predictions, '--split', 'test', '--extract', 'lavin', '--json'], log, commands));
    const accuracy = splitScore(score, images);
    log(`${name}: text-only ${(100 * accuracy.text).toFixed(1)} %, image ${(100 * accuracy.image).toFixed(1)} %, all ${(100 * accuracy.all).toFixed(1)} %`);
    return accuracy;
  };
  const frozen = await evaluate('frozen', identity, 'off');
  const lavin = await evaluate('lavin', checkpoint, 'off');

  // VTW: the layer calibrated on the training seed's val images, then the held-out test with it.
  const calibration = join(out, 'vtw-calibration.jsonl');
  // The questions as `egret eval run scienceqa` asks a LaVIN model them: LaVIN's QCM-ALE prompt.
  const calibrationProblems = readScienceQa(train.dir, 'val').filter((p) => p.image !== undefined).slice(0, settings.vtwSamples);
  await writeFile(calibration, calibrationProblems.map((p) => `${JSON.stringify({ image: relative(out, join(train.dir, 'images', 'val', p.id, p.image!)), prompt: scienceQaPrompt(p) })}\n`).join(''));
  const calibrated = JSON.parse(await egret(['calibrate', 'vtw', '--model', llama.dir, '--clip', clipFile, '--adapter', checkpoint, '--data', calibration, '--json', '--no-cache', ...t], log, commands)) as
    { layer: number | null; kl: Record<string, number> };
  const layers = settings.llama.shape.layers;
  const vtw: MmaResults['vtw'] = { layer: calibrated.layer, layers, kl: calibrated.kl, accuracy: null, prefillFlops: null };
  if (calibrated.layer !== null) {
    vtw.accuracy = await evaluate('lavin-vtw', checkpoint, String(calibrated.layer));
    vtw.prefillFlops = await prefillFlops(llama.dir, clipFile, checkpoint, heldOut.dir, calibrated.layer, threads);
  }

  const results: MmaResults = {
    mode, seed, heldOutSeed, threads, settings, vit,
    questions: { text: readScienceQa(heldOut.dir, 'test').length - images, image: images },
    llama: { ...llama.report, reused: llama.reused },
    clip: { ...clip.report, reused: clip.reused },
    adapters: { ...adapters.report, reused: adapters.reused },
    chance: chanceAccuracy(heldOut.dir, 'test'),
    frozen, lavin, vtw, commands,
  };
  await writeFile(join(out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  return results;
}

/** The tiny LLaMA's greedy continuation of the first held-out text-only problem, as LaVIN's training lays it out. */
async function greedySample(dir: string, heldOutSeed: number, threads: number): Promise<{ prompt: string; continuation: string }> {
  const model = await loadModel(dir, { threads });
  try {
    let index = 0;
    while (scienceQaSample(heldOutSeed, index).problem.image !== null) index++;
    const [sequence] = labLmSequences(model.tokenizer, heldOutSeed, index);
    const text = model.tokenizer.decode(sequence!.ids);
    // The prompt: up to and including "Response:".
    const cut = text.indexOf('Response:') + 'Response:'.length;
    const ids = [model.tokenizer.bosId, ...model.tokenizer.encode(text.slice(0, cut), { bos: false, eos: false })];
    const [result] = await generateAll(model, [await model.prepare(ids, [])], { maxNewTokens: 48, temperature: 0 });
    return { prompt: text.slice(0, cut), continuation: result!.text };
  } finally {
    await model.dispose();
  }
}

/**
 * Mean prefill matrix FLOPs over the held-out test split's image questions, as `egret eval run` prompts them,
 * without and with VTW at `layer`: the decoder's alone, and with the image's CLIP tower and projector.
 */
async function prefillFlops(llama: string, clip: string, adapter: string, data: string, layer: number, threads: number): Promise<NonNullable<MmaResults['vtw']['prefillFlops']>> {
  const model = await loadModel(llama, { threads, lavin: { clip, adapter } });
  try {
    const sums = { decoder: 0, decoderVtw: 0, total: 0, totalVtw: 0 };
    const questions = readScienceQa(data, 'test').filter((p) => p.image !== undefined);
    for (const q of questions) {
      const ids = tokenizeImagePrompt(model.tokenizer, renderPrompt('lavin_sqa', [{ role: 'user', text: scienceQaPrompt(q), images: 1 }]));
      if (!ids.includes(IMAGE_TOKEN_INDEX)) throw new Error('the LaVIN prompt has no image slot');
      const prompt = await model.prepare(ids, [await loadImage(join(data, 'images', 'test', q.id, q.image!))]);
      const withdrawn = withdrawVisualTokens(prompt, layer, model.decoder.config.layers);
      const vision = prompt.preparationFlops ?? 0;
      const total = requestFlops(model.decoder, prompt, 1);
      const totalVtw = requestFlops(model.decoder, withdrawn, 1);
      sums.total += total;
      sums.totalVtw += totalVtw;
      sums.decoder += total - vision;
      sums.decoderVtw += totalVtw - vision;
    }
    const n = questions.length;
    return { decoder: sums.decoder / n, decoderVtw: sums.decoderVtw / n, total: sums.total / n, totalVtw: sums.totalVtw / n };
  } finally {
    await model.dispose();
  }
}
