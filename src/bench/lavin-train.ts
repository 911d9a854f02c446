/**
 * Suite `lavin-train` (issue #11, not quick: the 7B-shaped configuration writes ~4 GB of random models into
 * os.tmpdir() once, holds ~5 GB in egret and ~4 GB in each PyTorch process, and a step takes seconds to minutes):
 * egret's LaVIN training step — LavinRun.step: CLIP with router adapters, projector, modality token, the LLaMA with
 * its MM-Adapters, cross-entropy, backward, AdamW; batch 1, accumulation 1, dropout 0, one fixed problem, constant
 * rate — against the same step in PyTorch (torch_lavin_train.py: LaVIN's official forward on the CPU in fp32,
 * torch.optim.AdamW, the same threads), interleaved in the same rounds, on two configurations:
 *
 *   tiny   test/fixtures/tiny-lavin: LLaMA dim 64 × 4 layers, vocabulary 400; CLIP width 32 × 24 blocks, patch 32;
 *          its checkpoint-19 adapters and its image problem a0
 *   7b     the `llama` suite's random LLaMA (2 layers of 7B's shapes, vocabulary 32000), a random CLIP with ViT-L/14's
 *          shapes (width 1024, 24 blocks, 16 heads, patch 14, 224 px; --clip=small: 6 blocks, patch 32, whose
 *          activations are a few per cent of the LLaMA's, to check the README's decoder formula alone) and a random
 *          LaVIN checkpoint with every adapter; one problem whose example fills the 512 rows with targets to the end
 *
 * Both sides read the same files and the same sample (egret tokenises and preprocesses it; the script takes
 * datasets.py's outputs). Before timing, each runs two steps and their losses must agree within 1e-3: the same
 * work and the same update. egret's peak memory of a step is measured in a child process per configuration
 * (VmHWM reset through /proc/self/clear_refs before the step, minus VmRSS then; glibc's mmap threshold fixed so
 * that freed buffers leave the resident set) and set beside the README's formula.
 *
 * Options: --configs=tiny,7b, --clip=l14|small, --python=PATH, --no-torch, --torch-blas=system,DIR (a PyTorch contender
 * per entry: `system` loads the interpreter's own libblas.so.3, DIR the libblas.so.3 in DIR, e.g. OpenBLAS), --pause=MS.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openCheckpointFile } from '../io/checkpoint.js';
import { tensor, torchSave, type SavedValue } from '../io/torch-save.js';
import { openLlama } from '../models/llama/load.js';
import { lavinClipConfig } from '../models/lavin/vision.js';
import { loadTokenizer } from '../text/load.js';
import type { ScienceQaProblem } from '../text/templates.js';
import { lavinSample } from '../train/lavin-data.js';
import { LAVIN_TRAIN_DEFAULTS, LavinRun, type LavinRunFiles, type LavinTrainOptions } from '../train/lavin.js';
import { readScienceQa } from '../train/scienceqa.js';
import { loadImage } from '../vision/decode.js';
import { preprocessLavin } from '../vision/pipelines.js';
import { interleave, pairedRatio, type Report, type Suite, type SuiteContext } from './harness.js';
import { randomLavinCheckpoint } from './lavin.js';
import { LLAMA_7B_LAYER, normals, randomLlamaDir } from './random-llama.js';
import { DEFAULT_PYTHON, TorchBaseline } from './torch-baseline.js';

const TINY = fileURLToPath(new URL('../../../test/fixtures/tiny-lavin', import.meta.url));
const MAX_WORDS = 512;
const LR = 1e-3;
/** Both sides' first two losses must agree this closely. */
const LOSS_TOLERANCE = 1e-3;
/** The README formula's prediction and the measured peak agree when within this fraction. */
const MEMORY_TOLERANCE = 0.2;
const MiB = 2 ** 20;

/** The run's settings: the official recipe's optimiser, one fixed sample per step, nothing random. */
const OPTIONS: LavinTrainOptions = {
  ...LAVIN_TRAIN_DEFAULTS, batchSize: 1, accumIter: 1, epochs: 1_000_000, warmupEpochs: 0, lr: LR, schedule: 'constant', dropout: 0, shuffle: false,
};

/** A ScienceQA folder whose train split is one problem with `image`. */
async function scienceQaFolder(dir: string, problem: ScienceQaProblem, image: string): Promise<string> {
  const data = join(dir, 'sqa');
  await mkdir(join(data, 'images/train/p0'), { recursive: true });
  await copyFile(image, join(data, 'images/train/p0/image.png'));
  await writeFile(join(data, 'problems.json'), JSON.stringify({ p0: { ...problem, image: 'image.png', split: 'train' } }));
  await writeFile(join(data, 'pid_splits.json'), JSON.stringify({ train: ['p0'], val: [], test: [] }));
  return data;
}

/** tiny-lavin's image problem a0, as the training tests use it. */
async function tinyFiles(dir: string): Promise<LavinRunFiles> {
  if (!(await exists(TINY))) throw new Error(`${TINY} is missing: the tiny configuration needs a checkout of egret (--configs=7b runs without it)`);
  const samples = (JSON.parse(readFileSync(join(TINY, 'expected.json'), 'utf8')) as { samples: { qid: string; problem: ScienceQaProblem }[] }).samples;
  const a0 = samples.find((s) => s.qid === 'a0')!.problem;
  return {
    model: join(TINY, 'llama'), clip: join(TINY, 'clip/ViT-tiny.pt'), adapter: join(TINY, 'lavin/checkpoint-19.pth'),
    data: await scienceQaFolder(dir, a0, join(TINY, 'images/a0.png')),
  };
}

/** Random CLIP towers of width 1024 (the random LaVIN checkpoint's projector reads 1024): ViT-L/14, and a small one. */
const CLIPS = {
  l14: { layers: 24, patch: 14, name: 'ViT-L/14 (24 blocks, patch 14, 257 tokens)' },
  small: { layers: 6, patch: 32, name: 'width 1024, 6 blocks, patch 32 (50 tokens)' },
} as const;
type ClipKind = keyof typeof CLIPS;

/**
 * An OpenAI CLIP visual state dict of width 1024 at 224 px (16 heads), random with clip/model.py's init scales, fp32
 * on disk (OpenAI ships fp16; both sides compute in fp32 either way). Written once into os.tmpdir().
 */
async function randomClip(kind: ClipKind, log: (m: string) => void): Promise<string> {
  const { layers, patch } = CLIPS[kind];
  const path = join(tmpdir(), `egret-bench-clip-w1024-l${layers}-p${patch}-224.pt`);
  if (await exists(path)) return path;
  log(`writing a random CLIP (${CLIPS[kind].name}) to ${path}`);
  const [width, grid, output] = [1024, 224 / patch, 768];
  let seed = 4242;
  const random = (shape: number[], std: number) => tensor('F32', shape, normals(shape.reduce((a, b) => a * b, 1), seed++, std));
  const fill = (n: number, v: number) => tensor('F32', [n], new Float32Array(n).fill(v));
  const scale = width ** -0.5;
  const visual: Record<string, SavedValue> = {
    'visual.conv1.weight': random([width, 3, patch, patch], 0.02), 'visual.class_embedding': random([width], scale),
    'visual.positional_embedding': random([grid * grid + 1, width], scale), 'visual.ln_pre.weight': fill(width, 1), 'visual.ln_pre.bias': fill(width, 0),
  };
  const [attnStd, projStd, fcStd] = [scale, scale * (2 * layers) ** -0.5, (2 * width) ** -0.5];
  for (let i = 0; i < layers; i++) {
    const p = `visual.transformer.resblocks.${i}`;
    Object.assign(visual, {
      [`${p}.attn.in_proj_weight`]: random([3 * width, width], attnStd), [`${p}.attn.in_proj_bias`]: fill(3 * width, 0),
      [`${p}.attn.out_proj.weight`]: random([width, width], projStd), [`${p}.attn.out_proj.bias`]: fill(width, 0),
      [`${p}.ln_1.weight`]: fill(width, 1), [`${p}.ln_1.bias`]: fill(width, 0),
      [`${p}.mlp.c_fc.weight`]: random([4 * width, width], fcStd), [`${p}.mlp.c_fc.bias`]: fill(4 * width, 0),
      [`${p}.mlp.c_proj.weight`]: random([width, 4 * width], projStd), [`${p}.mlp.c_proj.bias`]: fill(width, 0),
      [`${p}.ln_2.weight`]: fill(width, 1), [`${p}.ln_2.bias`]: fill(width, 0),
    });
  }
  Object.assign(visual, { 'visual.ln_post.weight': fill(width, 1), 'visual.ln_post.bias': fill(width, 0), 'visual.proj': random([width, output], scale) });
  await torchSave(path, visual);
  return path;
}

/**
 * The 7B-shaped configuration: the random LLaMA (a folder of links to it, with tiny-lavin's 400-piece tokenizer: the
 * sample's ids stay below 400 of the 32000), the random ViT-L/14, a random LaVIN checkpoint with every adapter, and a
 * problem long enough that its example, cut to 512 tokens, has targets to the end.
 */
async function sevenBFiles(dir: string, clip: ClipKind, log: (m: string) => void): Promise<LavinRunFiles> {
  if (!(await exists(TINY))) throw new Error(`${TINY} is missing: the 7b configuration borrows its tokenizer and image (a checkout of egret)`);
  const llama = await randomLlamaDir({ ...LLAMA_7B_LAYER, layers: 2, vocab: 32000 }, log);
  const model = join(dir, 'llama');
  await mkdir(model);
  for (const file of ['config.json', 'model.safetensors']) await symlink(join(llama, file), join(model, file));
  await copyFile(join(TINY, 'llama/tokenizer.model'), join(model, 'tokenizer.model'));
  const lecture = Array.from({ length: 12 }, (_, i) => `Fact ${i + 1}: a magnet attracts iron, steel and nickel, and two magnets push or pull on each other without touching.`).join(' ');
  const problem: ScienceQaProblem = {
    question: 'Will these magnets attract or repel each other?', hint: 'Two magnets are placed as shown.', choices: ['attract', 'repel'], answer: 1,
    lecture, solution: 'Like poles repel. The north pole of one magnet faces the north pole of the other, so these magnets will repel each other.',
  };
  return {
    model, clip: await randomClip(clip, log), adapter: await randomLavinCheckpoint(LLAMA_7B_LAYER.hidden, 2, log, CLIPS[clip].layers),
    data: await scienceQaFolder(dir, problem, join(TINY, 'images/a1.png')),
  };
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/** What torch_lavin_train.py reads: the files, datasets.py's outputs for the sample (egret's), the optimiser. */
async function torchJob(dir: string, files: LavinRunFiles, threads: number): Promise<string> {
  const tokenizer = await loadTokenizer(files.model);
  const [problem] = readScienceQa(files.data, 'train');
  const sample = lavinSample(tokenizer, problem!, join(files.data, 'images/train'), MAX_WORDS);
  const clip = await openCheckpointFile(files.clip);
  const size = (await lavinClipConfig(clip, files.clip)).imageSize;
  await clip.close();
  const pixels = join(dir, 'pixels.f32');
  await writeFile(pixels, preprocessLavin(await loadImage(sample.image!), size).pixelValues);
  const job = join(dir, 'job.json');
  await writeFile(job, JSON.stringify({
    llama: files.model, clip: files.clip, adapter: files.adapter, max_words: MAX_WORDS, lr: LR, weight_decay: OPTIONS.weightDecay, threads,
    samples: [{ example: Array.from(sample.example), labels: Array.from(sample.labels), indicator: sample.indicator, pixels }],
    prefix_img: tokenizer.encode('Image: ', { bos: false, eos: false }), prefix_nonimg: tokenizer.encode('Image: N/A', { bos: false, eos: false }),
  }));
  return job;
}

interface TorchInfo {
  torch: string;
  threads: number;
  blas: { BLAS_INFO: string; loaded: string[] };
  rows: number;
  losses: number[];
  seconds: number[];
  stepPeakBytes: number[];
  rssBytes: number;
}

/** What the memory child reports. */
interface MemoryReport {
  loadedRssBytes: number;
  /** The process's peak while opening the run. */
  loadPeakBytes: number;
  steps: { peakBytes: number; rssBeforeBytes: number }[];
  processPeakBytes: number;
}

const status = (key: string) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${key}:\\s+(\\d+) kB`))![1]) * 1024;

/**
 * The memory child (this module run as a script): opens the run, then for two steps resets VmHWM to the current
 * RSS (/proc/self/clear_refs: 5) and reads the peak above it.
 */
async function measureStepMemory(files: LavinRunFiles, threads: number): Promise<MemoryReport> {
  const run = await LavinRun.open(files, { ...OPTIONS, threads });
  try {
    const gc = (globalThis as { gc?: () => void }).gc;
    const steps: MemoryReport['steps'] = [];
    const loadPeakBytes = status('VmHWM');
    let processPeakBytes = 0;
    for (let i = 0; i < 2; i++) {
      // V8 unmaps the pages a collection frees a little later, on its own thread: wait for it.
      gc?.();
      await sleep(500);
      const rssBeforeBytes = status('VmRSS');
      writeFileSync('/proc/self/clear_refs', '5');
      await run.step();
      const peak = status('VmHWM');
      processPeakBytes = Math.max(processPeakBytes, peak);
      steps.push({ peakBytes: peak - rssBeforeBytes, rssBeforeBytes });
    }
    return { loadedRssBytes: steps[0]!.rssBeforeBytes, loadPeakBytes, steps, processPeakBytes };
  } finally {
    await run.dispose();
  }
}

/** Runs the memory child for one configuration. */
async function childMemory(files: LavinRunFiles, threads: number): Promise<MemoryReport> {
  // A fixed mmap threshold turns off glibc's sliding one, so that freed tensors are unmapped rather than kept for reuse.
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), JSON.stringify({ files, threads })], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`the memory child exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(out) as MemoryReport;
}

/** The model's geometry and parameter counts, for the README's formula. */
async function geometry(files: LavinRunFiles, run: LavinRun) {
  const weights = await openLlama(files.model);
  const clip = await openCheckpointFile(files.clip);
  const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  // The tensors the step uses: every LLaMA weight (the embedding table held in JS instead of ORT), CLIP but ln_post, proj.
  const frozen = weights.source.list().filter((t) => !t.name.includes('rope.freqs')).reduce((n, t) => n + count(t.shape), 0)
    + clip.list().filter((t) => t.name.startsWith('visual.') && !/^visual\.(ln_post|proj)/.test(t.name)).reduce((n, t) => n + count(t.shape), 0);
  const trainable = [...run.shapes.values()].reduce((n, s) => n + count(s), 0);
  const c = weights.config;
  const v = await lavinClipConfig(clip, files.clip);
  await Promise.all([weights.source.close(), clip.close()]);
  const clipTokens = (v.imageSize / v.patchSize) ** 2 + 1;
  return { d: c.hidden, f: c.intermediate, h: c.heads, l: c.layers, v: c.vocab, frozen, trainable, imageSize: v.imageSize, clip: { d: v.hidden, s: clipTokens, h: v.heads, l: v.layers, f: 4 * v.hidden } };
}

/**
 * README.md, "Training engine": the activation term 4·B·(L·(6·S·D + H·S² + k·S·F) + 9·S·V) of a step's peak, k = 4
 * for the LLaMA's SwiGLU MLP (gate, sigmoid, SiLU, up). The README's decoder formula leaves the CLIP tower out; its
 * blocks are counted by the same per-layer rule with k = 2 (QuickGELU keeps c_fc's output and its sigmoid; c_proj's
 * weight is frozen, so its input is not kept) and no vocabulary term.
 */
const activationBytes = (b: number, s: number, d: number, f: number, h: number, l: number, v: number, k: number) => 4 * b * (l * (6 * s * d + h * s * s + k * s * f) + 9 * s * v);

async function run(ctx: SuiteContext): Promise<Report> {
  const configs = String(ctx.options.configs ?? 'tiny,7b').split(',');
  if (configs.some((c) => c !== 'tiny' && c !== '7b')) throw new Error('--configs takes tiny, 7b');
  const python = typeof ctx.options.python === 'string' ? ctx.options.python : DEFAULT_PYTHON;
  const blasList = ctx.options['no-torch'] === true ? [] : String(ctx.options['torch-blas'] ?? 'system').split(',');
  const pauseMs = ctx.options.pause === undefined ? 20 : Number(ctx.options.pause);
  const clipKind = String(ctx.options.clip ?? 'l14');
  if (!(clipKind in CLIPS)) throw new Error(`--clip takes ${Object.keys(CLIPS).join(', ')}`);
  const rows: Report['rows'] = [];
  const notes: string[] = [];
  const details: Record<string, unknown> = {};
  for (const config of configs) {
    const dir = await mkdtemp(join(tmpdir(), `egret-bench-lavin-train-${config}-`));
    const torches: { label: string; torch: TorchBaseline<TorchInfo> }[] = [];
    let lavin: LavinRun | undefined;
    try {
      const loadAtStart = loadavg()[0]!;
      const files = config === 'tiny' ? await tinyFiles(dir) : await sevenBFiles(dir, clipKind as ClipKind, ctx.log);
      ctx.log(`${config}: egret's peak memory of a step (child process)`);
      const memory = await childMemory(files, ctx.threads);
      ctx.log(`${config}: opening egret's run`);
      lavin = await LavinRun.open(files, { ...OPTIONS, threads: ctx.threads }, ctx.log);
      const first = [await lavin.step(), await lavin.step()];
      const seq = first[0]!.rows;
      const job = await torchJob(dir, files, ctx.threads);
      for (const blas of blasList) {
        ctx.log(`${config}: starting PyTorch (${python}, BLAS ${blas}): two steps first`);
        const env: Record<string, string> = { OPENBLAS_NUM_THREADS: String(ctx.threads), OMP_NUM_THREADS: String(ctx.threads) };
        if (blas !== 'system') env['LD_LIBRARY_PATH'] = [blas, process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':');
        const started = await TorchBaseline.launch<TorchInfo>(python, 'torch_lavin_train.py', [job], env);
        if (typeof started === 'string') {
          notes.push(`${config}: PyTorch (BLAS ${blas}) skipped: ${started}`);
          continue;
        }
        const info = started.info;
        const label = `torch (${info.blas.BLAS_INFO === 'generic' && blas === 'system' ? 'reference BLAS' : `BLAS ${info.blas.loaded.map((l) => l.split('/').at(-1)).join(', ')}`})`;
        torches.push({ label, torch: started });
        const diffs = info.losses.map((l, i) => Math.abs(l - first[i]!.loss));
        notes.push(`${config}: ${label}: torch ${info.torch}, ${info.threads} threads, BLAS_INFO=${info.blas.BLAS_INFO}, loaded ${info.blas.loaded.join(', ') || 'no libblas'}; ` +
          `losses of steps 1, 2: torch ${info.losses.map((l) => l.toFixed(6)).join(', ')}, egret ${first.map((r) => r.loss.toFixed(6)).join(', ')} (|Δ| ${diffs.map((d) => d.toExponential(1)).join(', ')}); ` +
          `rows ${info.rows} / ${seq}; start-up steps ${info.seconds.map((s) => s.toFixed(2)).join(', ')} s, their peaks ${info.stepPeakBytes.map((b) => (b / MiB).toFixed(1)).join(', ')} MiB`);
        if (diffs.some((d) => !(d <= LOSS_TOLERANCE)) || info.rows !== seq) {
          throw new Error(`${config}: PyTorch and egret do not do the same step: losses ${info.losses} vs ${first.map((r) => r.loss)}, rows ${info.rows} vs ${seq}`);
        }
      }
      const g = await geometry(files, lavin);
      ctx.log(`${config}: timing egret${torches.map((t) => `, ${t.label}`).join('')}`);
      // What of egret's step is reading and preprocessing the image, which PyTorch gets ready-made.
      const [problem] = readScienceQa(files.data, 'train');
      const image = join(files.data, 'images/train', problem!.id, problem!.image!);
      const contenders: Record<string, () => unknown> = { egret: () => lavin!.step(), image: async () => preprocessLavin(await loadImage(image), g.imageSize) };
      torches.forEach((t, i) => (contenders[`torch${i}`] = () => t.torch.request('step')));
      const big = config === '7b';
      const m = await interleave(contenders, { warmup: ctx.warmup ?? (big ? 1 : 2), reps: ctx.reps ?? (big ? 3 : 15), pauseMs });
      const formula = activationBytes(1, seq, g.d, g.f, g.h, g.l, g.v, 4);
      const withClip = formula + activationBytes(1, g.clip.s, g.clip.d, g.clip.f, g.clip.h, g.clip.l, 0, 2);
      const measured = memory.steps[0]!.peakBytes;
      const within = (predicted: number) => (Math.abs(measured / predicted - 1) <= MEMORY_TOLERANCE ? 'yes' : 'no');
      const row = (contender: string, key: string, extra: Record<string, string | number | null>) => {
        const ms = m.times[key]!.median;
        return { config, contender, rows: seq, ms, stepsPerS: 1000 / ms, tokensPerS: seq / (ms / 1000), ...extra };
      };
      rows.push(row('egret', 'egret', {
        speed: null, peakMiB: measured / MiB, formulaMiB: formula / MiB, formulaOk: within(formula), clipMiB: withClip / MiB, clipOk: within(withClip),
      }));
      torches.forEach((t, i) => {
        const r = pairedRatio(m, `torch${i}`, 'egret');
        rows.push(row(t.label, `torch${i}`, { speed: r.median, speedIqr: `${r.p25.toFixed(2)}–${r.p75.toFixed(2)}`, peakMiB: t.torch.info.stepPeakBytes[0]! / MiB }));
      });
      const W = 4 * g.frozen;
      notes.push(`${config}: LLaMA D=${g.d} F=${g.f} H=${g.h} L=${g.l} V=${g.v}, S=${seq} rows; CLIP D=${g.clip.d} × ${g.clip.l} blocks, ${g.clip.s} tokens; ` +
        `P=${(g.frozen / 1e6).toFixed(2)} M frozen, T=${(g.trainable / 1e3).toFixed(1)} k trainable parameters`);
      notes.push(`${config}: egret step peak above the loaded run: step 1 ${(measured / MiB).toFixed(1)} MiB, step 2 ${(memory.steps[1]!.peakBytes / MiB).toFixed(1)} MiB; ` +
        `the README's activation term ${(formula / MiB).toFixed(1)} MiB (×${(measured / formula).toFixed(2)}), with the CLIP blocks by its per-layer rule ${(withClip / MiB).toFixed(1)} MiB (×${(measured / withClip).toFixed(2)}); ` +
        `whole process: ${(memory.loadPeakBytes / MiB).toFixed(0)} MiB peak while opening, ${(memory.loadedRssBytes / MiB).toFixed(0)} MiB opened, ${(memory.processPeakBytes / MiB).toFixed(0)} MiB peak in a step, against W + 24·T + activations = ${((W + 24 * g.trainable + withClip) / MiB).toFixed(0)} MiB`);
      notes.push(`${config}: of egret's step, reading and preprocessing the image takes ${m.times.image.median.toFixed(1)} ms (median, same rounds)`);
      notes.push(`${config}: load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end; ${m.rounds.length} timed rounds`);
      details[config] = { files, seq, memory, geometry: g, formulaBytes: formula, withClipBytes: withClip, times: m.times, rounds: m.rounds, torch: torches.map((t) => ({ label: t.label, ...t.torch.info })) };
    } finally {
      for (const t of torches) await t.torch.stop();
      await lavin?.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  }
  return {
    title: 'LaVIN training step (batch 1, accumulation 1, dropout 0, fp32, CPU): egret vs PyTorch in the same rounds, and egret\'s peak memory of a step',
    columns: [
      { key: 'config' }, { key: 'contender' }, { key: 'rows', digits: 0 }, { key: 'ms', label: 'ms/step', digits: 1 }, { key: 'stepsPerS', label: 'steps/s', digits: 3 },
      { key: 'tokensPerS', label: 'tokens/s', digits: 1 }, { key: 'speed', label: 'egret/this speed', digits: 2 }, { key: 'speedIqr', label: 'p25–p75' },
      { key: 'peakMiB', label: 'step peak MiB', digits: 1 }, { key: 'formulaMiB', label: 'README MiB', digits: 1 }, { key: 'formulaOk', label: '±20 %' },
      { key: 'clipMiB', label: '+CLIP MiB', digits: 1 }, { key: 'clipOk', label: '±20 %' },
    ],
    rows,
    notes: [
      `threads ${ctx.threads}; medians of interleaved rounds (${pauseMs} ms idle before each call); egret/this speed = this contender's ms / egret's ms, paired per round (> 1: egret faster)`,
      'tokens/s = sequence rows (modality token, BOS, prefix, visual tokens, text; up to the last target) per second; a step = forward, backward and the AdamW update',
      'egret\'s step also builds the batch (tokens to embeddings, image decode and preprocessing); PyTorch gets datasets.py\'s tensors ready-made',
      'step peak: VmHWM − VmRSS around the first step (egret: in a child process; PyTorch: its first start-up step). README MiB: 4·B·(L·(6SD + HS² + 4SF) + 9SV) for the LLaMA; +CLIP: plus L·(6SD + HS² + 2SF) for the CLIP blocks (QuickGELU keeps 2 of the MLP\'s tensors)',
      ...notes,
    ],
    details,
  };
}

export const lavinTrainSuite: Suite = {
  name: 'lavin-train',
  description: "LaVIN's training step (tiny fixture; 2 layers of LLaMA-7B + ViT-L/14, 512 tokens) vs PyTorch, and its peak memory vs the README formula",
  quick: false,
  options: {
    configs: '=tiny,7b configurations to run (default both)',
    python: `=PATH interpreter with torch (default ${DEFAULT_PYTHON})`,
    'no-torch': 'skip the PyTorch contenders',
    'torch-blas': '=system,DIR a PyTorch contender per entry: system = its own libblas.so.3, DIR = the libblas.so.3 in DIR',
    pause: '=MS idle time before each timed call (default 20)',
    clip: `=l14|small the 7b configuration's random CLIP: ${Object.entries(CLIPS).map(([k, c]) => `${k} = ${c.name}`).join('; ')} (default l14)`,
  },
  run,
};

// As the memory child: node lavin-train.js '{"files": …, "threads": N}'.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { files, threads } = JSON.parse(process.argv[2]!) as { files: LavinRunFiles; threads: number };
  process.stdout.write(`${JSON.stringify(await measureStepMemory(files, threads))}\n`);
}
