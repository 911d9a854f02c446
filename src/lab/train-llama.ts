/**
 * Trains the lab's tiny LLaMA from scratch on the lab's language with egret's training engine — next-token loss
 * over every token, AdamW, warm-up then cosine — and saves it in Meta's layout with the lab tokenizer, so that it
 * is LaVIN's frozen base model. The text is what LaVIN's training puts around its adapters: each ScienceQA-like
 * problem as LaVIN's sequence (BOS, "Image: " or "Image: N/A", the QCM-ALE prompt and target, EOS) without the
 * modality token, and every fourth sample's small-print question in vicuna_v1 with its code. Where LaVIN puts a
 * picture's visual tokens, the text has a description of the picture (sceneCaption): the tiny model's stand-in for
 * what a real LLaMA knows from reading about things it never saw, so that it learns to answer from a description;
 * LaVIN's adapters must then make the visual tokens serve in its place. Samples are drawn as training goes (sample
 * i of the run's seed), each seen once.
 */
import { negativeLogLikelihood } from '../generate/sampling.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { wholeSequenceFeeds } from '../models/decoder.js';
import { CausalLM, openLlama } from '../models/llama/load.js';
import { causalMask } from '../runtime/kv-cache.js';
import { ort } from '../runtime/session.js';
import { loadTokenizer } from '../text/load.js';
import { renderPrompt, scienceQaPrompt, scienceQaTarget } from '../text/templates.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { crossEntropy } from '../train/loss.js';
import { checkpointTensors, freshTensors } from '../train/scratch.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { lossEnds, warmupCosine } from '../train/schedule.js';
import { Trainer } from '../train/trainer.js';
import { smallPrintMessage } from './datasets.js';
import { scienceQaSample, type Scene } from './scienceqa.js';
import { smallPrintText } from './smallprint.js';
import type { LabTrainOptions } from './train-visual.js';
import { buildTinyLlamaForward, saveMetaLlama, tinyLlamaConfig, tinyLlamaTensors, type TinyLlamaShape } from './tiny-llama.js';

const IGNORE = -100;

/** How a from-scratch trainer of the lab runs (the small-print trainer's options that apply). */
export type TinyLlamaTrainOptions = Pick<LabTrainOptions, 'seed' | 'steps' | 'batchSize' | 'lr' | 'warmup' | 'threads' | 'log'>;

export interface TinyLlamaTrainReport {
  parameters: number;
  steps: number;
  /** Tokens the loss covered, over the run. */
  tokens: number;
  seconds: number;
  /** Mean loss of the first and the last tenth of the steps. */
  firstLoss: number;
  lastLoss: number;
}

/** LaVIN's encodings of its modality prefixes (lavin/model.py prefix_img, prefix_nonimg). */
export const LAVIN_PREFIX = { image: 'Image: ', text: 'Image: N/A' } as const;

/** What a picture shows, object by object in drawing order: "a blue circle at the top left; an orange star at the center". */
export function sceneCaption(scene: Scene): string {
  const third = (x: number, size: number, names: [string, string, string]) => names[Math.min(2, Math.floor((3 * x) / size))]!;
  return scene.objects.map((o) => {
    const row = third(o.cy, scene.height, ['top', 'middle', 'bottom']);
    const column = third(o.cx, scene.width, ['left', 'center', 'right']);
    return `${/^[aeiou]/.test(o.colour) ? 'an' : 'a'} ${o.colour} ${o.shape} at the ${row === 'middle' && column === 'center' ? 'center' : `${row} ${column}`}`;
  }).join('; ');
}

/**
 * The token sequences of sample `index` of `seed`: its problem as LaVIN's text (a picture's description in place of
 * its visual tokens), and on every fourth its small print.
 */
export function labLmSequences(tokenizer: Tokenizer, seed: number, index: number): number[][] {
  const { problem, scene } = scienceQaSample(seed, index);
  const encode = (text: string) => tokenizer.encode(text, { bos: false, eos: false });
  const prefix = scene ? [...encode(LAVIN_PREFIX.image), ...encode(`${sceneCaption(scene)}.`)] : encode(LAVIN_PREFIX.text);
  // lavin/model.py insert_image_embeds: BOS, the prefix, (the visual tokens,) then the example after its BOS.
  // Three problems in four end at the answer (QCM-A): more answers per token than LaVIN's QCM-ALE target alone.
  const target = index % 4 === 0 ? scienceQaTarget(problem) : scienceQaTarget(problem).slice(0, 'The answer is X.'.length);
  const example = tokenizer.encode(scienceQaPrompt(problem) + target, { bos: true, eos: true });
  const sequences = [[example[0]!, ...prefix, ...example.slice(1)]];
  if (index % 4 === 0) {
    const { question, code } = smallPrintText(seed, index);
    const prompt = renderPrompt('vicuna_v1', [{ role: 'user', text: smallPrintMessage(question) }]);
    sequences.push(tokenizer.encode(`${prompt} ${code}`, { bos: true, eos: true }));
  }
  return sequences;
}

/** Batches of `batchSize` sequences from samples 0, 1, 2, … of `seed`, in order. */
function* sequenceStream(tokenizer: Tokenizer, seed: number, batchSize: number): Generator<number[][]> {
  let pending: number[][] = [];
  for (let index = 0; ; index++) {
    pending.push(...labLmSequences(tokenizer, seed, index));
    while (pending.length >= batchSize) {
      yield pending.slice(0, batchSize);
      pending = pending.slice(batchSize);
    }
  }
}

/** A batch as the forward graph and the loss take it: ids padded with 0 to the longest, targets the next token. */
export function lmBatch(sequences: readonly (readonly number[])[]): Record<string, ort.Tensor> {
  const B = sequences.length;
  const seq = Math.max(...sequences.map((s) => s.length));
  const ids = new BigInt64Array(B * seq);
  const targets = new BigInt64Array(B * seq).fill(BigInt(IGNORE));
  sequences.forEach((s, b) => {
    s.forEach((id, r) => (ids[b * seq + r] = BigInt(id)));
    for (let r = 0; r + 1 < s.length; r++) targets[b * seq + r] = BigInt(s[r + 1]!);
  });
  return {
    ...wholeSequenceFeeds(B, seq, causalMask(new Array(B).fill(0), new Array(B).fill(seq), seq, 0)),
    input_ids: new ort.Tensor('int64', ids, [B, seq]),
    targets: new ort.Tensor('int64', targets, [B, seq]),
  };
}

/**
 * Trains a tiny LLaMA of `shape` and writes params.json, consolidated.00.pth and tokenizer.model into `dir`; returns
 * the run's figures and the trained tensors under HF names.
 */
export async function trainTinyLlama(dir: string, shape: TinyLlamaShape, tokenizerModel: Uint8Array, opts: TinyLlamaTrainOptions):
  Promise<{ report: TinyLlamaTrainReport; tensors: Map<string, Float32Array> }> {
  const log = opts.log ?? (() => undefined);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.model'), tokenizerModel);
  const tokenizer = await loadTokenizer(dir);
  const config = tinyLlamaConfig(shape);
  const specs = tinyLlamaTensors(shape);
  const source = freshTensors(specs, opts.seed);
  const forward = buildTinyLlamaForward(config, source);
  const loss = crossEntropy(forward.logits, forward.graph.input('targets', 'int64', ['batch', 'seq']), IGNORE);
  const training = buildTrainingGraph(forward.graph, loss, {
    trainable: (name) => name.split('+').every((part) => specs.has(part)),
    optimizer: { betas: [0.9, 0.95], weightDecay: 0.1 },
    clipGradNorm: 1,
  });
  const parameters = training.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  log(`tiny LLaMA: ${parameters} parameters (width ${shape.width}, ${shape.layers} layers, vocabulary ${shape.vocab}); compiling the training step`);
  const trainer = await Trainer.create(training, { threads: opts.threads, memArena: false });
  const started = performance.now();
  const losses: number[] = [];
  let tokens = 0;
  const stream = sequenceStream(tokenizer, opts.seed, opts.batchSize);
  let tensors: Map<string, Float32Array>;
  try {
    for (let step = 0; step < opts.steps; step++) {
      const batch = stream.next().value as number[][];
      const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
      const result = await trainer.run(lmBatch(batch), lr);
      losses.push(result.loss);
      tokens += batch.reduce((n, s) => n + s.length - 1, 0);
      if ((step + 1) % 50 === 0 || step + 1 === opts.steps) log(`tiny LLaMA step ${step + 1}/${opts.steps}: loss ${result.loss.toFixed(3)}, lr ${lr.toExponential(2)}`);
    }
    const trained = new Map(trainer.tensors.map((t) => [t.name, Float32Array.from(trainer.param(t.name))]));
    tensors = checkpointTensors(forward.graph, trained, (name) => source.info(name).shape);
    await saveMetaLlama(dir, shape, tensors, specs);
  } finally {
    await trainer.dispose();
  }
  const report = {
    parameters, steps: opts.steps, tokens, seconds: (performance.now() - started) / 1000,
    ...lossEnds(losses),
  };
  return { report, tensors };
}

/**
 * Mean next-token loss (nats) of the Meta LLaMA in `dir`, loaded as egret loads any Meta LLaMA, over `sequences`
 * (each scored from its second token on).
 */
export async function heldOutLoss(dir: string, sequences: readonly (readonly number[])[], threads?: number): Promise<number> {
  const weights = await openLlama(dir);
  const lm = await CausalLM.build(weights, { threads }).finally(() => weights.source.close());
  try {
    let sum = 0;
    let count = 0;
    for (const s of sequences) {
      const rows = s.map((_, i) => i).slice(0, -1);
      const { logits } = await lm.decoder.forward(lm.decoder.newCache(1), {
        embeds: lm.embed(s), seq: s.length, counts: [s.length], positions: [s.map((_, i) => i)], logitRows: [rows],
      });
      const V = lm.config.vocab;
      rows.forEach((r) => {
        sum += negativeLogLikelihood(logits.subarray(r * V, (r + 1) * V), s[r + 1]!);
        count++;
      });
    }
    return sum / count;
  } finally {
    await lm.dispose();
  }
}
