/**
 * Training LaVIN's adapters on ScienceQA (luogen1996/LaVIN train.py + engine.py train_one_epoch + util/misc.py
 * save_model): the frozen LLaMA and CLIP, every adapter trainable, AdamW, warm-up then half-cycle cosine, checkpoints
 * in LaVIN's own layout that its eval.py and egret's --adapter both read.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { WeightScope } from '../graph/weights.js';
import * as op from '../graph/ops/index.js';
import { openCheckpointFile, type TensorSource } from '../io/checkpoint.js';
import { PyDict, type PyValue } from '../io/pickle.js';
import { PytorchFile } from '../io/pytorch.js';
import { tensor, torchSave, type SavedValue } from '../io/torch-save.js';
import { wholeSequenceFeeds } from '../models/decoder.js';
import { lavinClipConfig } from '../models/lavin/vision.js';
import { lavinSettings, type LavinSettings } from '../models/lavin/settings.js';
import { buildLavinTrainingForward, lavinTrainingMask } from '../models/lavin/training.js';
import { openLlama } from '../models/llama/load.js';
import { ort } from '../runtime/session.js';
import { loadTokenizer } from '../text/load.js';
import { seededRandom } from '../generate/sampling.js';
import { crossEntropy } from './loss.js';
import { lavinBatch, lavinSample, type LavinSample, type LavinSequenceSpec } from './lavin-data.js';
import { initialLavinAdapters } from './lavin-init.js';
import { readScienceQa } from './scienceqa.js';
import { buildTrainingGraph } from './training-graph.js';
import { Trainer } from './trainer.js';

/** The run's settings; defaults are the official 7B ScienceQA recipe (scripts/finetuning_sqa_7b.sh) on one process. */
export interface LavinTrainOptions {
  split: string;
  /** Per micro-batch (--batch_size 4). */
  batchSize: number;
  /** Micro-batches per update (--accum_iter; 4 on each of the official 2 GPUs: 8 on one process keeps the batch of 32). */
  accumIter: number;
  epochs: number;
  warmupEpochs: number;
  /** Base learning rate; lr = blr × effective batch / 256 unless `lr` is given. */
  blr: number;
  lr?: number;
  minLr: number;
  weightDecay: number;
  /** Adapter dropout (RepAdapter_Router's 0.1). */
  dropout: number;
  schedule: 'cosine' | 'constant';
  maxSteps?: number;
  seed: number;
  shuffle: boolean;
  maxWords: number;
  /** For adapters made fresh (no --adapter): --adapter_dim, --hidden_proj, --temperature, --n_prompt, --adapter_scale. */
  adapterDim: number;
  hiddenProj: number;
  temperature: number;
  nPrompt: number;
  adapterScale: number;
  threads?: number;
}

export const LAVIN_TRAIN_DEFAULTS: LavinTrainOptions = {
  split: 'train', batchSize: 4, accumIter: 8, epochs: 20, warmupEpochs: 2, blr: 9e-3, minLr: 0, weightDecay: 0.02, dropout: 0.1,
  schedule: 'cosine', seed: 0, shuffle: true, maxWords: 512, adapterDim: 8, hiddenProj: 128, temperature: 10, nPrompt: 6, adapterScale: 1,
};

/** Where a run stands: updates done, and the next micro-batch's epoch and position in it. */
export interface RunPosition {
  step: number;
  epoch: number;
  batch: number;
}

export interface StepReport extends RunPosition {
  lr: number;
  loss: number;
  /** Sequence rows through the model in this update (over its micro-batches). */
  rows: number;
  /** Sequence rows through the model per second in this update. */
  tokensPerSecond: number;
  /** The update's gradients (mean over its micro-batches), names without `module.`; on request. */
  grads?: Map<string, Float32Array>;
}

const ADAPTER_OPTIMIZER = 'egret_optimizer';
const RUN_STATE = 'egret_run';

/** Model parts a run opens, and what resuming restores. */
export interface LavinRunFiles {
  model: string;
  clip: string;
  /** Adapters to start from: a LaVIN checkpoint (or the run's own, resuming). Absent: fresh adapters (seeded). */
  adapter?: string;
  data: string;
}

/** A training run: model, data and the trainer, advanced one update at a time. */
export class LavinRun {
  private constructor(
    readonly options: LavinTrainOptions,
    readonly settings: LavinSettings,
    private readonly trainer: Trainer,
    private readonly samples: LavinSample[],
    private readonly spec: LavinSequenceSpec,
    readonly position: RunPosition,
  ) {}

  /** Opens everything and checks the data (every image present) before any step runs. */
  static async open(files: LavinRunFiles, options: LavinTrainOptions, log: (message: string) => void = () => undefined): Promise<LavinRun> {
    const tokenizer = await loadTokenizer(files.model);
    const problems = readScienceQa(files.data, options.split);
    const samples = problems.map((p) => lavinSample(tokenizer, p, join(files.data, 'images', options.split), options.maxWords));
    if (samples.length < options.batchSize) throw new InputError(`${files.data}: split '${options.split}' has ${samples.length} problems, fewer than one batch of ${options.batchSize}`);
    const weights = await openLlama(files.model);
    const sources: TensorSource[] = [];
    try {
      const clip = await openCheckpointFile(files.clip);
      sources.push(clip);
      const clipConfig = await lavinClipConfig(clip, files.clip);
      let adapters: TensorSource;
      let args: ReadonlyMap<PyValue, PyValue> | undefined;
      if (files.adapter) {
        adapters = await openCheckpointFile(files.adapter);
        sources.push(adapters);
      } else {
        adapters = initialLavinAdapters({
          llmWidth: weights.config.hidden, llmLayers: weights.config.layers, clipWidth: clipConfig.hidden, clipLayers: clipConfig.layers,
          hidden: options.adapterDim, groups: 2, projectorHidden: options.hiddenProj,
        }, options.seed);
        args = new Map<PyValue, PyValue>([['temperature', options.temperature], ['adapter_scale', options.adapterScale], ['n_prompt', options.nPrompt]]);
      }
      const where = files.adapter ?? 'fresh adapters';
      const settings = lavinSettings(adapters, where, { llmWidth: weights.config.hidden, clipWidth: clipConfig.hidden, clipLayers: clipConfig.layers }, args);
      const position = files.adapter ? await savedPosition(adapters) : { step: 0, epoch: 0, batch: 0 };
      const forward = buildLavinTrainingForward(weights, clip, adapters, clipConfig, settings, options.dropout);
      const embedTable = await new WeightScope(forward.graph, weights.source, '', weights.layout).read('model.embed_tokens.weight');
      const targets = forward.graph.input('targets', 'int64', ['batch', 'targets']);
      // model.py: logits[:, :-1] against labels[:, 1:], ignore_index 0.
      const loss = crossEntropy(op.slice(forward.logits, [1], [0], [-1]), targets, 0);
      const training = buildTrainingGraph(forward.graph, loss, {
        trainable: (name) => name.startsWith(settings.prefix) && name.includes('adapter'),
        optimizer: { betas: [0.9, 0.95], eps: 1e-8, weightDecay: options.weightDecay },
        accumulation: options.accumIter,
        gradOutputs: true,
      });
      log(`${training.tensors.length} adapter tensors, ${training.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0)} trainable parameters; compiling the training step`);
      const trainer = await Trainer.create(training, { threads: options.threads, seed: options.seed, memArena: false });
      if (position.step > 0) await restoreMoments(trainer, adapters, settings.prefix, position.step);
      const spec: LavinSequenceSpec = {
        embedTable, hidden: weights.config.hidden, visualTokens: settings.visualTokens, imageSize: clipConfig.imageSize, maxWords: options.maxWords,
        prefixImage: tokenizer.encode('Image: ', { bos: false, eos: false }), prefixText: tokenizer.encode('Image: N/A', { bos: false, eos: false }),
      };
      return new LavinRun(options, settings, trainer, samples, spec, position);
    } finally {
      // The trainer's session and state hold every weight now.
      await Promise.all(sources.map((s) => s.close()));
      await weights.source.close();
    }
  }

  /** Micro-batches per epoch (the sampler drops the last partial batch). */
  get batchesPerEpoch(): number {
    return Math.floor(this.samples.length / this.options.batchSize);
  }

  /** Updates per epoch. */
  get stepsPerEpoch(): number {
    return Math.max(1, Math.floor(this.batchesPerEpoch / this.options.accumIter));
  }

  get totalSteps(): number {
    const all = this.options.epochs * this.stepsPerEpoch;
    return this.options.maxSteps === undefined ? all : Math.min(all, this.options.maxSteps);
  }

  get done(): boolean {
    return this.position.step >= this.totalSteps;
  }

  /**
   * The learning rate at a fractional epoch (util/lr_sched.py adjust_learning_rate): linear warm-up from 0, then a
   * half-cycle cosine to min_lr; `constant`: the base rate throughout.
   */
  learningRate(epoch: number): number {
    const { blr, lr, batchSize, accumIter, warmupEpochs, epochs, minLr, schedule } = this.options;
    const base = lr ?? (blr * batchSize * accumIter) / 256;
    if (schedule === 'constant') return base;
    if (epoch < warmupEpochs) return (base * epoch) / warmupEpochs;
    return minLr + (base - minLr) * 0.5 * (1 + Math.cos((Math.PI * (epoch - warmupEpochs)) / (epochs - warmupEpochs)));
  }

  private order?: { epoch: number; samples: number[] };

  /** The samples of an epoch in order: a permutation seeded by (seed, epoch), or the split's order; made once an epoch. */
  private epochOrder(epoch: number): number[] {
    if (this.order?.epoch !== epoch) this.order = { epoch, samples: this.shuffled(epoch) };
    return this.order.samples;
  }

  private shuffled(epoch: number): number[] {
    const order = this.samples.map((_, i) => i);
    if (!this.options.shuffle) return order;
    const random = seededRandom((this.options.seed * 1_000_003 + epoch) >>> 0);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }

  /** One update: accumIter micro-batches, the last of which applies AdamW. */
  async step(): Promise<StepReport> {
    const { batchSize, accumIter } = this.options;
    const started = performance.now();
    let lossSum = 0;
    let rows = 0;
    let grads: Map<string, Float32Array> | undefined;
    const pos = this.position;
    // engine.py sets the rate at the update's first micro-batch: data_iter_step / len(data_loader) + epoch.
    const lr = this.learningRate(pos.epoch + pos.batch / this.batchesPerEpoch);
    for (let k = 0; k < accumIter; k++) {
      if (pos.batch >= this.batchesPerEpoch) {
        pos.epoch++;
        pos.batch = 0;
      }
      const order = this.epochOrder(pos.epoch);
      const batch = order.slice(pos.batch * batchSize, (pos.batch + 1) * batchSize).map((i) => this.samples[i]!);
      const built = await lavinBatch(batch, this.spec);
      const feeds: Record<string, ort.Tensor> = {
        ...built.feeds,
        ...wholeSequenceFeeds(batch.length, built.seq, lavinTrainingMask(batch.length, built.seq)),
        targets: new ort.Tensor('int64', built.targets, [batch.length, built.seq - 1]),
      };
      const result = await this.trainer.run(feeds, lr);
      lossSum += result.loss;
      rows += batch.length * built.seq;
      if (result.grads) {
        grads ??= new Map();
        for (const [name, g] of result.grads) {
          const bare = this.bareName(name);
          const sum = grads.get(bare) ?? new Float32Array(g.length);
          for (let i = 0; i < g.length; i++) sum[i]! += g[i]! / accumIter;
          grads.set(bare, sum);
        }
      }
      pos.batch++;
    }
    pos.step++;
    const seconds = (performance.now() - started) / 1000;
    return { ...pos, lr, loss: lossSum / accumIter, rows, tokensPerSecond: rows / seconds, ...(grads ? { grads } : {}) };
  }

  /** A trainable tensor's name as LaVIN's state dict has it, without `module.`. */
  bareName(name: string): string {
    return name.slice(this.settings.prefix.length);
  }

  /** Each trainable tensor's shape, names without `module.`. */
  get shapes(): Map<string, readonly number[]> {
    return new Map(this.trainer.tensors.map((t) => [this.bareName(t.name), t.shape]));
  }

  /** The adapters now, names without `module.`. */
  parameters(): Map<string, Float32Array> {
    return new Map(this.trainer.tensors.map((t) => [this.bareName(t.name), Float32Array.from(this.trainer.param(t.name))]));
  }

  /**
   * Saves the run as util/misc.py save_model does — `{'model': {'module.' + name: tensor}, 'epoch', 'args'}` — with
   * egret's own Adam moments and position beside them (LaVIN's loaders read only 'model'). Atomic.
   */
  async save(path: string): Promise<void> {
    const state = this.trainer.state();
    const model: Record<string, SavedValue> = {};
    const moments: Record<string, SavedValue> = {};
    for (const t of this.trainer.tensors) {
      const name = `module.${this.bareName(t.name)}`;
      model[name] = tensor('F32', t.shape, Float32Array.from(state.params.get(t.name)!));
      const m = state.m.get(t.name);
      const v = state.v.get(t.name);
      if (m && v) moments[name] = { exp_avg: tensor('F32', t.shape, Float32Array.from(m)), exp_avg_sq: tensor('F32', t.shape, Float32Array.from(v)) };
    }
    const o = this.options;
    const effective = o.batchSize * o.accumIter;
    const args: Record<string, SavedValue> = {
      batch_size: o.batchSize, accum_iter: o.accumIter, epochs: o.epochs, warmup_epochs: o.warmupEpochs, blr: o.blr,
      lr: o.lr ?? (o.blr * effective) / 256, min_lr: o.minLr, weight_decay: o.weightDecay, seed: o.seed,
      adapter_type: 'attn', visual_adapter_type: 'router', adapter_dim: this.settings.llm.hidden, hidden_proj: this.settings.projectorHidden,
      temperature: this.settings.llm.temperature, n_prompt: this.settings.visualTokens, adapter_scale: this.settings.llm.scale,
      max_seq_len: o.maxWords, prompt_format: 'QCM-ALE', use_caption: false, options: ['A', 'B', 'C', 'D', 'E'],
    };
    await torchSave(path, {
      model: { kind: 'ordered', entries: model },
      epoch: this.position.epoch,
      args: { kind: 'namespace', fields: args },
      [ADAPTER_OPTIMIZER]: moments,
      [RUN_STATE]: { step: this.position.step, epoch: this.position.epoch, batch: this.position.batch, seed: o.seed },
    }, 'checkpoint');
  }

  async dispose(): Promise<void> {
    await this.trainer.dispose();
  }
}

/** Where a saved run stood (its egret_run record); a LaVIN checkpoint without one starts a new run. */
async function savedPosition(source: TensorSource): Promise<RunPosition> {
  const root = source instanceof PytorchFile && source.root instanceof PyDict ? source.root.entries.get(RUN_STATE) : undefined;
  if (!(root instanceof PyDict)) return { step: 0, epoch: 0, batch: 0 };
  const field = (key: string) => {
    const v = root.entries.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InputError(`checkpoint's ${RUN_STATE}.${key} is not a count`);
    return v;
  };
  return { step: field('step'), epoch: field('epoch'), batch: field('batch') };
}

/** Puts a saved run's Adam moments and update count into the trainer (its parameters came in as the adapters). */
async function restoreMoments(trainer: Trainer, source: TensorSource, prefix: string, step: number): Promise<void> {
  const state = trainer.state();
  for (const t of trainer.tensors) {
    if (!state.m.has(t.name)) continue;
    const saved = `${ADAPTER_OPTIMIZER}.module.${t.name.slice(prefix.length)}`;
    if (!source.has(`${saved}.exp_avg`)) throw new InputError(`the checkpoint has no Adam moments for '${t.name}' (${saved}): it cannot be resumed`);
    state.m.set(t.name, await source.readFloat32(`${saved}.exp_avg`));
    state.v.set(t.name, await source.readFloat32(`${saved}.exp_avg_sq`));
  }
  trainer.setState({ ...state, step });
}

/** The run's checkpoints in `dir`: checkpoint-N.pth files, by N. */
export async function runCheckpoints(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => /^checkpoint-\d+\.pth$/.test(n)).sort((a, b) => Number(a.slice(11, -4)) - Number(b.slice(11, -4)));
}
