/**
 * Stage 0 of the lab's MRA model, as LLaVA-HR starts from a ConvNeXt pretrained elsewhere: its ConvNeXt alone
 * learns to see the code's characters. Crops of the preprocessed image (the 768-px square the MRA model's ConvNeXt
 * sees, so that the print has the size it will have there) go through the ConvNeXt's stages; a linear head on the
 * last-stage cells is told which code character's centre lies in each cell (readingTargets' rule), trained with
 * AdamW and dropped. A crop costs a ninth of the image and no LLaMA runs, so this gives the high-resolution path
 * many more characters a second than training the whole model does.
 */
import { seededRandom } from '../generate/sampling.js';
import { Graph } from '../graph/ir.js';
import { identityLayout, WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { MemorySource } from '../io/memory-source.js';
import { convnextStages } from '../models/convnext.js';
import { mapToTokens } from '../models/llava-hr/mr-adapter.js';
import { ort } from '../runtime/session.js';
import { decodeImage } from '../vision/decode.js';
import { checkpointTensors, freshTensors } from '../train/scratch.js';
import { warmupCosine } from '../train/schedule.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { Trainer } from '../train/trainer.js';
import type { LabVisualModel } from './models.js';
import { renderSmallPrint } from './smallprint.js';
import { cellTargets, characterCentres, readingHeadLoss, readingHeadSpecs } from './reading.js';

export interface ConvnextPretrainSettings {
  steps: number;
  /** Images rendered a step; each gives `crops` crops. */
  images: number;
  crops: number;
  /** Crop side in pixels of the preprocessed image (a multiple of the ConvNeXt's stride). */
  crop: number;
  lr: number;
  warmup: number;
  /** The curriculum's ease (renderSmallPrint) at the first step, falling linearly to 0 at the last. */
  ease: number;
}

export interface ConvnextPretrainOptions extends ConvnextPretrainSettings {
  seed: number;
  threads?: number;
  onStep?: (report: { step: number; loss: number; lr: number; seconds: number }) => void;
  log?: (message: string) => void;
}

/** One blank cell in this many within a crop says 'no character'. */
const BLANK_STRIDE = 4;
/** Samples of stage 0 are drawn from their own stream (seed + this), not the main training's. */
const STREAM_OFFSET = 7_000_000;

/**
 * Pretrains the ConvNeXt of `model` (a lab LLaVA-HR) whose fresh tensors `source` holds; returns a source with
 * the same tensors, the ConvNeXt's replaced by the trained ones.
 */
export async function pretrainConvnext(model: LabVisualModel, source: TensorSource, opts: ConvnextPretrainOptions): Promise<MemorySource> {
  const log = opts.log ?? (() => undefined);
  if (!model.convnext) throw new Error(`stage 0 pretrains an MRA model's ConvNeXt; a ${model.family} model has none`);
  const { config: convnext, prefix } = model.convnext;
  const names = [...model.specs.keys()].filter((n) => n.startsWith(`${prefix}.`));
  const stride = convnext.patchSize * 2 ** (convnext.dims.length - 1);
  if (opts.crop % stride !== 0 || opts.crop > model.size) throw new Error(`stage 0: crop ${opts.crop} must be a multiple of ${stride} up to ${model.size}`);
  const head = freshTensors(readingHeadSpecs(convnext.dims.at(-1)!), opts.seed);
  const both = new MemorySource(Object.fromEntries(await Promise.all([
    ...names.map(async (n) => [n, { shape: source.info(n).shape, data: Float32Array.from(await source.readFloat32(n)) }] as const),
    ...head.list().map(async (t) => [t.name, { shape: t.shape, data: await head.readFloat32(t.name) }] as const),
  ])));
  const g = new Graph('convnext-reading');
  const S = opts.crop;
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, S, S]);
  const cells = mapToTokens(convnextStages(new WeightScope(g, both, '', identityLayout).at(prefix), convnext, pixels).at(-1)!);
  const loss = readingHeadLoss(g, both, cells);
  const training = buildTrainingGraph(g, loss, {
    trainable: (name) => name.split('+').every((part) => both.has(part)),
    optimizer: { betas: [0.9, 0.98], weightDecay: 0.05 },
    clipGradNorm: 1,
  });
  log(`stage 0: the ConvNeXt alone on ${S}-px crops, ${opts.steps} steps of ${opts.images} images × ${opts.crops} crops`);
  const trainer = await Trainer.create(training, { threads: opts.threads, memArena: false });
  const side = model.size;
  const count = (S / stride) ** 2;

  const batchAt = async (step: number) => {
    const ease = opts.ease * Math.max(0, 1 - step / opts.steps);
    const indices = Array.from({ length: opts.images }, (_, b) => step * opts.images + b);
    const samples = await Promise.all(indices.map((i) => renderSmallPrint(opts.seed + STREAM_OFFSET, i, ease)));
    const B = opts.images * opts.crops;
    const crops = new Float32Array(B * 3 * S * S);
    const targets = new BigInt64Array(B * count);
    let k = 0;
    for (const sample of samples) {
      const image = model.preprocess(await decodeImage(sample.png));
      const centres = characterCentres(sample, side);
      const random = seededRandom(opts.seed * 1_000_003 + sample.index);
      const mid = centres.reduce((a, c) => [a[0]! + c.x / centres.length, a[1]! + c.y / centres.length], [0, 0]);
      for (let c = 0; c < opts.crops; c++, k++) {
        // All but the last crop hold the code somewhere; the last is anywhere.
        const around = c < opts.crops - 1;
        const place = (centre: number) => Math.round(Math.min(side - S, Math.max(0, around ? centre - S / 2 + (random() - 0.5) * (S / 2) : random() * (side - S))));
        const [x0, y0] = [place(mid[0]!), place(mid[1]!)];
        for (let ch = 0; ch < 3; ch++) {
          for (let y = 0; y < S; y++) {
            const from = ch * side * side + (y0 + y) * side + x0;
            crops.set(image.subarray(from, from + S), ((k * 3 + ch) * S + y) * S);
          }
        }
        cellTargets(centres, x0, y0, S, stride, BLANK_STRIDE).forEach((t, j) => (targets[k * count + j] = BigInt(t)));
      }
    }
    return { crops, targets, B };
  };

  let next = batchAt(0);
  for (let step = 0; step < opts.steps; step++) {
    const started = performance.now();
    const { crops, targets, B } = await next;
    if (step + 1 < opts.steps) next = batchAt(step + 1);
    const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
    const result = await trainer.run({
      pixel_values: new ort.Tensor('float32', crops, [B, 3, S, S]),
      reading_targets: new ort.Tensor('int64', targets, [B, count]),
    }, lr);
    opts.onStep?.({ step: step + 1, loss: result.loss, lr, seconds: (performance.now() - started) / 1000 });
  }
  const trained = checkpointTensors(g, new Map(trainer.tensors.map((t) => [t.name, Float32Array.from(trainer.param(t.name) as Float32Array)])), (n) => both.info(n).shape);
  await trainer.dispose();
  const all: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const t of source.list()) all[t.name] = { shape: t.shape, data: trained.get(t.name) ?? await source.readFloat32(t.name) };
  return new MemorySource(all);
}
