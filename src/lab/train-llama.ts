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
import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { crossEntropy, headAttentionCrossEntropy } from '../train/loss.js';
import { checkpointTensors, freshTensors } from '../train/scratch.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { lossEnds, warmupCosine } from '../train/schedule.js';
import { Trainer } from '../train/trainer.js';
import { smallPrintMessage } from './datasets.js';
import { scienceQaSample, type Scene, type ScienceQaSample } from './scienceqa.js';
import { smallPrintText } from './smallprint.js';
import type { LabTrainOptions } from './train-visual.js';
import { buildTinyLlamaForward, saveMetaLlama, tinyLlamaConfig, tinyLlamaTensors, type TinyLlamaShape } from './tiny-llama.js';

const IGNORE = -100;
/** Batches in a row without a placed answer after which the aids give up (a tokenizer that splits the letters). */
const MAX_UNPLACED_BATCHES = 100;

/** How a from-scratch trainer of the lab runs (the small-print trainer's options that apply). */
export type TinyLlamaTrainOptions = Pick<LabTrainOptions, 'seed' | 'steps' | 'batchSize' | 'lr' | 'warmup' | 'threads' | 'log'> & {
  /**
   * Weight of the answer aids (0 or absent: none), three terms: at the row that predicts a problem's answer letter,
   * the last layer's first head is told to attend to the correct option's last token; at each option's tokens, the
   * first layer's first head to attend to that option's letter (so that the letter is there to be read); and the
   * letter's own cross-entropy, which in the mean over every token of a problem weighs a hundredth. On the
   * answer's loss alone the tiny LLaMA never bound an answer to its option's letter (every skill at chance for 1200
   * steps); with the first aid alone it still answered at chance, the letter's logits within tenths of each other;
   * with all three it answered 58 % of held-out problems after 1500 steps, chance being 44 % (docs/LAB.md "Status").
   */
  attention?: number;
};

export interface TinyLlamaTrainReport {
  parameters: number;
  steps: number;
  /** Tokens the loss covered, over the run. */
  tokens: number;
  seconds: number;
  /** Mean loss of the first and the last tenth of the steps. */
  firstLoss: number;
  lastLoss: number;
  /** The answer aid's loss, the same way, when it is on. */
  answerAid?: { firstLoss: number; lastLoss: number };
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

/** Where a sequence answers its problem: the row that predicts the answer's letter, and the correct option's text. */
export interface AnswerPlace {
  /** The row whose next token is the answer's letter (the last token of "The answer is"). */
  row: number;
  /** Each option of "Options: (A) … (B) …": where its letter is (the "B" of "(B)") and its text's last token. */
  options: { letter: number; end: number }[];
  /** Each choice's letter as the target spells it after "The answer is", and the correct choice's index. */
  letters: number[];
  answer: number;
  skill: string;
}

export interface LmSequence {
  ids: number[];
  /** Set on a problem's sequence when its answer's letter and option could be placed (see answerPlace). */
  answer?: AnswerPlace;
}

/**
 * The token sequences of sample `index` of `seed`: its problem as LaVIN's text (a picture's description in place of
 * its visual tokens), and on every fourth its small print.
 */
export function labLmSequences(tokenizer: Tokenizer, seed: number, index: number): LmSequence[] {
  const { problem, scene } = scienceQaSample(seed, index);
  const encode = (text: string) => tokenizer.encode(text, { bos: false, eos: false });
  const prefix = scene ? [...encode(LAVIN_PREFIX.image), ...encode(`${sceneCaption(scene)}.`)] : encode(LAVIN_PREFIX.text);
  // lavin/model.py insert_image_embeds: BOS, the prefix, (the visual tokens,) then the example after its BOS.
  // Three problems in four end at the answer (QCM-A): more answers per token than LaVIN's QCM-ALE target alone.
  const text = scienceQaPrompt(problem) + (index % 4 === 0 ? scienceQaTarget(problem) : scienceQaTarget(problem).slice(0, 'The answer is X.'.length));
  const example = tokenizer.encode(text, { bos: true, eos: true });
  const place = answerPlace(tokenizer, problem, text, example);
  const sequences: LmSequence[] = [{
    ids: [example[0]!, ...prefix, ...example.slice(1)],
    ...(place ? { answer: { ...place, row: place.row + prefix.length, options: place.options.map((o) => ({ letter: o.letter + prefix.length, end: o.end + prefix.length })) } } : {}),
  }];
  if (index % 4 === 0) {
    const { question, code } = smallPrintText(seed, index);
    const prompt = renderPrompt('vicuna_v1', [{ role: 'user', text: smallPrintMessage(question) }]);
    sequences.push({ ids: tokenizer.encode(`${prompt} ${code}`, { bos: true, eos: true }) });
  }
  return sequences;
}

/**
 * Where `example` (BOS and the tokens of `text`: QCM prompt and target) answers `problem`. A place is the token
 * that covers a given character of the text, found by decoding ever longer prefixes of the tokens (a binary search):
 * encoding a prefix of the text instead would misplace a piece that spans the cut ("purple" before "\n").
 * Undefined where the tokens do not decode to the text or the letter is not one piece, so no place is guessed.
 */
function answerPlace(tokenizer: Tokenizer, problem: ScienceQaSample['problem'], text: string, example: readonly number[]): AnswerPlace | undefined {
  const tokens = example.slice(1, example.at(-1) === tokenizer.eosId ? -1 : undefined);
  if (tokenizer.decode(tokens) !== text) return undefined;
  const tokenAt = (at: number) => 1 + pieceAt(tokenizer, tokens, at);
  const letterOf = (i: number) => String.fromCharCode(65 + i);
  const start = text.indexOf('\nOptions: ');
  const answerAt = text.indexOf('The answer is ', start);
  if (start < 0 || answerAt < 0) return undefined;
  let from = start;
  const options = [];
  for (const [i, choice] of problem.choices.entries()) {
    const option = `(${letterOf(i)}) ${choice}`;
    const at = text.indexOf(option, from);
    if (at < 0 || at > answerAt) return undefined;
    from = at + option.length;
    options.push({ letter: tokenAt(at + 1), end: tokenAt(from - 1) });
  }
  const row = tokenAt(answerAt + 'The answer is'.length - 1);
  // Each letter as the target spells it (" B" or " B.", not the "B" inside "(B)").
  const letters = problem.choices.map((_, i) => {
    const spelt = tokenizer.encode(`The answer is ${letterOf(i)}.`, { bos: false, eos: false });
    return spelt[pieceAt(tokenizer, spelt, 'The answer is '.length)]!;
  });
  if (example[row + 1] !== letters[problem.answer]) return undefined;
  return { row, options, letters, answer: problem.answer, skill: problem.skill };
}

/** The index of the piece of `tokens` that holds character `at` of their decoded text (a binary search). */
function pieceAt(tokenizer: Tokenizer, tokens: readonly number[], at: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tokenizer.decode(tokens.slice(0, mid + 1)).length > at) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Batches of `batchSize` sequences from samples 0, 1, 2, … of `seed`, in order. */
function* sequenceStream(tokenizer: Tokenizer, seed: number, batchSize: number): Generator<LmSequence[]> {
  let pending: LmSequence[] = [];
  for (let index = 0; ; index++) {
    pending.push(...labLmSequences(tokenizer, seed, index));
    while (pending.length >= batchSize) {
      yield pending.slice(0, batchSize);
      pending = pending.slice(batchSize);
    }
  }
}

/**
 * The aids' attention targets for a batch padded to `seq` (elsewhere ignored): `answer`, at each problem's answer
 * row, its correct option's last token; `binding`, at each option's tokens after its letter, that letter.
 */
export function answerAidTargets(sequences: readonly LmSequence[], seq: number): { answer: ort.Tensor; binding: ort.Tensor; letter: ort.Tensor } {
  const answer = new BigInt64Array(sequences.length * seq).fill(BigInt(IGNORE));
  const binding = new BigInt64Array(sequences.length * seq).fill(BigInt(IGNORE));
  const letter = new BigInt64Array(sequences.length * seq).fill(BigInt(IGNORE));
  sequences.forEach((s, b) => {
    if (!s.answer) return;
    answer[b * seq + s.answer.row] = BigInt(s.answer.options[s.answer.answer]!.end);
    letter[b * seq + s.answer.row] = BigInt(s.answer.letters[s.answer.answer]!);
    for (const { letter, end } of s.answer.options) binding.fill(BigInt(letter), b * seq + letter + 1, b * seq + end + 1);
  });
  const dims = [sequences.length, seq];
  return { answer: new ort.Tensor('int64', answer, dims), binding: new ort.Tensor('int64', binding, dims), letter: new ort.Tensor('int64', letter, dims) };
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
  const g = forward.graph;
  let loss = crossEntropy(forward.logits, g.input('targets', 'int64', ['batch', 'seq']), IGNORE);
  const aid = opts.attention ?? 0;
  if (aid) {
    g.output(loss, 'text_loss');
    // The first head of a layer, told where to look by the targets fed as `input`.
    const aidLoss = (layer: Value, input: string) => headAttentionCrossEntropy(layer, 0, g.input(input, 'int64', ['batch', 'seq']), IGNORE);
    const answerLoss = aidLoss(forward.attention.at(-1)!, 'answer_targets');
    const bindingLoss = aidLoss(forward.attention[0]!, 'binding_targets');
    const letterLoss = crossEntropy(forward.logits, g.input('letter_targets', 'int64', ['batch', 'seq']), IGNORE);
    g.output(answerLoss, 'answer_aid_loss');
    g.output(bindingLoss, 'binding_aid_loss');
    g.output(letterLoss, 'letter_loss');
    loss = op.add(loss, op.mul(op.add(op.add(answerLoss, bindingLoss), letterLoss), aid));
  }
  const training = buildTrainingGraph(g, loss, {
    trainable: (name) => name.split('+').every((part) => specs.has(part)),
    optimizer: { betas: [0.9, 0.95], weightDecay: 0.1 },
    clipGradNorm: 1,
  });
  const parameters = training.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  log(`tiny LLaMA: ${parameters} parameters (width ${shape.width}, ${shape.layers} layers, vocabulary ${shape.vocab}); compiling the training step`);
  const trainer = await Trainer.create(training, { threads: opts.threads, ...(aid ? { metrics: ['text_loss', 'answer_aid_loss', 'binding_aid_loss', 'letter_loss'] } : {}) });
  const started = performance.now();
  const losses: number[] = [];
  const aidLosses: number[] = [];
  let tokens = 0;
  const stream = sequenceStream(tokenizer, opts.seed, opts.batchSize);
  let tensors: Map<string, Float32Array>;
  try {
    for (let step = 0; step < opts.steps; step++) {
      let batch = stream.next().value as LmSequence[];
      // The aids' mean cross-entropies are NaN over a batch with no answer placed (as torch's are): draw another.
      for (let tries = 1; aid && !batch.some((s) => s.answer); tries++) {
        if (tries === MAX_UNPLACED_BATCHES) throw new Error(`the answer aids found no answer to place in ${tries} batches: does the tokenizer spell " A" after "The answer is" as one piece?`);
        batch = stream.next().value as LmSequence[];
      }
      const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
      const feeds = lmBatch(batch.map((s) => s.ids));
      if (aid) {
        const targets = answerAidTargets(batch, feeds['input_ids']!.dims[1]!);
        feeds['answer_targets'] = targets.answer;
        feeds['binding_targets'] = targets.binding;
        feeds['letter_targets'] = targets.letter;
      }
      const result = await trainer.run(feeds, lr);
      const textLoss = result.metrics['text_loss'] ?? result.loss;
      losses.push(textLoss);
      if (aid) aidLosses.push(result.metrics['answer_aid_loss']!);
      tokens += batch.reduce((n, s) => n + s.ids.length - 1, 0);
      if ((step + 1) % 50 === 0 || step + 1 === opts.steps) {
        const aidPart = aid ? `, answer aid ${result.metrics['answer_aid_loss']!.toFixed(3)}, binding aid ${result.metrics['binding_aid_loss']!.toFixed(3)}, letter ${result.metrics['letter_loss']!.toFixed(3)}` : '';
        log(`tiny LLaMA step ${step + 1}/${opts.steps}: loss ${textLoss.toFixed(3)}${aidPart}, lr ${lr.toExponential(2)}`);
      }
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
    ...(aid ? { answerAid: lossEnds(aidLosses) } : {}),
  };
  return { report, tensors };
}

/** Runs `use` on the Meta LLaMA in `dir`, loaded as egret loads any Meta LLaMA, with a function that scores rows. */
async function withMetaLlama<T>(dir: string, threads: number | undefined,
                                use: (rowLogits: (ids: readonly number[], rows: number[]) => Promise<Float32Array>, vocab: number) => Promise<T>): Promise<T> {
  const weights = await openLlama(dir);
  const lm = await CausalLM.build(weights, { threads }).finally(() => weights.source.close());
  try {
    return await use(async (ids, rows) => (await lm.decoder.forward(lm.decoder.newCache(1), {
      embeds: lm.embed(ids), seq: ids.length, counts: [ids.length], positions: [ids.map((_, i) => i)], logitRows: [rows],
    })).logits, lm.config.vocab);
  } finally {
    await lm.dispose();
  }
}

/**
 * Mean next-token loss (nats) of the Meta LLaMA in `dir` over `sequences` (each scored from its second token on).
 */
export async function heldOutLoss(dir: string, sequences: readonly (readonly number[])[], threads?: number): Promise<number> {
  return withMetaLlama(dir, threads, async (rowLogits, V) => {
    let sum = 0;
    let count = 0;
    for (const s of sequences) {
      const rows = s.map((_, i) => i).slice(0, -1);
      const logits = await rowLogits(s, rows);
      rows.forEach((r) => {
        sum += negativeLogLikelihood(logits.subarray(r * V, (r + 1) * V), s[r + 1]!);
        count++;
      });
    }
    return sum / count;
  });
}

/** Answers given right of those asked, in all and by skill. */
export interface AnswerAccuracy {
  right: number;
  asked: number;
  /** The answers chance would get right (the sum of 1 / #choices). */
  chance: number;
  bySkill: Record<string, { right: number; asked: number }>;
}

/**
 * How often the Meta LLaMA in `dir` ranks the correct letter first among the choices' letters at the answer row of
 * problems 0 … count − 1 of `seed`, given their text up to "The answer is" (a picture as its description): what
 * the frozen base model knows before any adapter, and the most LaVIN's adapters can draw from it.
 */
export async function answerAccuracy(dir: string, seed: number, count: number, threads?: number): Promise<AnswerAccuracy> {
  const tokenizer = await loadTokenizer(dir);
  return withMetaLlama(dir, threads, async (rowLogits) => {
    const result: AnswerAccuracy = { right: 0, asked: 0, chance: 0, bySkill: {} };
    for (let index = 0; index < count; index++) {
      const [{ ids, answer }] = labLmSequences(tokenizer, seed, index) as [LmSequence];
      if (!answer) continue;
      const logits = await rowLogits(ids.slice(0, answer.row + 1), [answer.row]);
      const scores = answer.letters.map((id) => logits[id]!);
      const right = scores.indexOf(Math.max(...scores)) === answer.answer ? 1 : 0;
      const skill = (result.bySkill[answer.skill] ??= { right: 0, asked: 0 });
      skill.right += right;
      skill.asked++;
      result.right += right;
      result.asked++;
      result.chance += 1 / answer.letters.length;
    }
    return result;
  });
}
