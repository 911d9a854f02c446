/**
 * The lab's tiny CLIP-style ViT in OpenAI's layout (clip/model.py VisionTransformer: `visual.*` in a state dict,
 * with ln_post and proj), the tower LaVIN's --clip reads, with a config.json beside it for the geometry OpenAI's
 * loader would derive (heads = width / 64 does not hold for a tiny tower).
 *
 * It is pretrained by egret on the ScienceQA-like pictures with a supervised stand-in for CLIP's contrastive
 * objective: from the final class token (ln_post, proj, then a linear head that is not saved) it predicts what a
 * caption would say — how many objects of each colour and shape, how many of each shape, and which colour and shape
 * sits in each cell of a 3 × 3 grid — each as a softmax over classes. Its intermediate class tokens, which LaVIN
 * reads, get no direct supervision, as in a real CLIP.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { tensor, torchSave, type SavedValue } from '../io/torch-save.js';
import { clipEmbeddings, clipEncoder, clipLayerNorm, clipPreLayerNorm, OPENAI_CLIP_NAMING, type ClipTower, type ClipVisionConfig } from '../models/clip.js';
import { ort } from '../runtime/session.js';
import { crossEntropy } from '../train/loss.js';
import { checkpointTensors, freshTensors, type TensorSpec } from '../train/scratch.js';
import { buildTrainingGraph } from '../train/training-graph.js';
import { lossEnds, warmupCosine } from '../train/schedule.js';
import { Trainer } from '../train/trainer.js';
import { decodeImage } from '../vision/decode.js';
import { preprocessLavin } from '../vision/pipelines.js';
import type { TinyLlamaTrainOptions } from './train-llama.js';
import { COLOURS, renderScene, scienceQaSample, SHAPES, type Scene } from './scienceqa.js';

export interface TinyClipShape {
  width: number;
  layers: number;
  heads: number;
  patch: number;
  imageSize: number;
  /** Width of proj's output (CLIP's embed_dim). */
  embedDim: number;
}

/** The file name of the state dict in a tower's folder; config.json lies beside it. */
export const TINY_CLIP_FILE = 'ViT-lab.pt';

export function tinyClipConfig(shape: TinyClipShape): ClipVisionConfig {
  return { hidden: shape.width, layers: shape.layers, heads: shape.heads, patchSize: shape.patch, imageSize: shape.imageSize, layerNormEps: 1e-5, activation: 'quick_gelu' };
}

/** Every `visual.*` tensor with OpenAI's initialisation (clip/model.py initialize_parameters and the modules' own). */
export function tinyClipTensors(shape: TinyClipShape): Map<string, TensorSpec> {
  const { width: W, layers: L, patch: p } = shape;
  const specs = new Map<string, TensorSpec>();
  const normal = (name: string, dims: number[], std: number) => specs.set(name, { shape: dims, init: { normal: std } });
  const constant = (name: string, dims: number[], value: number) => specs.set(name, { shape: dims, init: { constant: value } });
  const norm = (name: string) => {
    constant(`${name}.weight`, [W], 1);
    constant(`${name}.bias`, [W], 0);
  };
  const scale = W ** -0.5;
  const projStd = scale * (2 * L) ** -0.5;
  const grid = shape.imageSize / p;
  // nn.Conv2d's default kaiming-uniform bound 1/√fan_in, as a normal of that order.
  normal('visual.conv1.weight', [W, 3, p, p], (3 * p * p) ** -0.5);
  normal('visual.class_embedding', [W], scale);
  normal('visual.positional_embedding', [grid * grid + 1, W], scale);
  norm('visual.ln_pre');
  for (let i = 0; i < L; i++) {
    const block = `visual.${OPENAI_CLIP_NAMING.layer(i)}`;
    norm(`${block}.ln_1`);
    norm(`${block}.ln_2`);
    normal(`${block}.attn.in_proj_weight`, [3 * W, W], scale);
    constant(`${block}.attn.in_proj_bias`, [3 * W], 0);
    normal(`${block}.attn.out_proj.weight`, [W, W], projStd);
    constant(`${block}.attn.out_proj.bias`, [W], 0);
    normal(`${block}.mlp.c_fc.weight`, [4 * W, W], (2 * W) ** -0.5);
    constant(`${block}.mlp.c_fc.bias`, [4 * W], 0);
    normal(`${block}.mlp.c_proj.weight`, [W, 4 * W], projStd);
    constant(`${block}.mlp.c_proj.bias`, [W], 0);
  }
  norm('visual.ln_post');
  normal('visual.proj', [W, shape.embedDim], scale);
  return specs;
}

// ---- what a caption of a picture says, as classification targets ----------------------------------------------

const COLOUR_NAMES = Object.keys(COLOURS) as (keyof typeof COLOURS)[];
const PAIRS = COLOUR_NAMES.length * SHAPES.length;
const GRID = 3;
/** Slots: count of each (colour, shape) pair (0–3, 3 meaning three or more), count of each shape (0–7), each grid cell's pair (or none). */
const SLOTS = PAIRS + SHAPES.length + GRID * GRID;
const CLASSES = PAIRS + 1;
const IGNORE = -100;

/** The targets of a picture, one class per slot (IGNORE for a cell that holds two objects). */
export function sceneTargets(scene: Scene): number[] {
  const pair = (o: Scene['objects'][number]) => COLOUR_NAMES.indexOf(o.colour) * SHAPES.length + SHAPES.indexOf(o.shape);
  const pairs = new Array<number>(PAIRS).fill(0);
  const shapes = new Array<number>(SHAPES.length).fill(0);
  const cells = new Array<number>(GRID * GRID).fill(PAIRS);
  const taken = new Array<number>(GRID * GRID).fill(0);
  for (const o of scene.objects) {
    pairs[pair(o)] = Math.min(3, pairs[pair(o)]! + 1);
    shapes[SHAPES.indexOf(o.shape)]!++;
    const cell = Math.min(GRID - 1, Math.floor((o.cy / scene.height) * GRID)) * GRID + Math.min(GRID - 1, Math.floor((o.cx / scene.width) * GRID));
    cells[cell] = taken[cell]!++ === 0 ? pair(o) : IGNORE;
  }
  return [...pairs, ...shapes.map((n) => Math.min(7, n)), ...cells];
}

/** Pictures of samples 0, 1, 2, … of `seed` (the image problems'), preprocessed as LaVIN's loader does, with their targets. */
async function* pictureStream(seed: number, size: number): AsyncGenerator<{ pixels: Float32Array; targets: number[] }> {
  for (let index = 0; ; index++) {
    const { scene } = scienceQaSample(seed, index);
    if (!scene) continue;
    const image = await decodeImage(await renderScene(scene));
    yield { pixels: preprocessLavin(image, size).pixelValues, targets: sceneTargets(scene) };
  }
}

// ---- training ---------------------------------------------------------------------------------------------------

export interface TinyClipReport {
  /** The tower's parameters (the head's not counted). */
  parameters: number;
  steps: number;
  seconds: number;
  firstLoss: number;
  lastLoss: number;
}

/** pixels [batch, 3, S, S] → the pretraining head's logits [batch, slots, classes]. */
function buildPretrainingForward(shape: TinyClipShape, source: TensorSource): { graph: Graph; logits: Value } {
  const graph = new Graph('tiny-clip-pretrain');
  const config = tinyClipConfig(shape);
  const pixels = graph.input('pixel_values', 'float32', ['batch', 3, shape.imageSize, shape.imageSize]);
  const tower: ClipTower = { config, scope: new WeightScope(graph, source, 'visual'), naming: OPENAI_CLIP_NAMING, dtype: 'fp32' };
  const x = clipEncoder(tower, clipPreLayerNorm(tower, clipEmbeddings(tower, pixels)), 0, config.layers);
  const cls = op.matmul(clipLayerNorm(tower, 'ln_post', op.slice(x, [1], [0], [1])), tower.scope.weight('proj'));
  const head = new WeightScope(graph, source, 'head');
  const logits = op.add(op.matmul(cls, head.weight('weight')), head.weight('bias'));
  return { graph, logits: op.reshape(logits, [0, SLOTS, CLASSES]) };
}

/**
 * Writes the tower into `dir` (TINY_CLIP_FILE and config.json): pretrained for `opts.steps` steps, or as initialised
 * when `opts.steps` is 0 (a frozen random tower, for comparison).
 */
export async function trainTinyClip(dir: string, shape: TinyClipShape, opts: TinyLlamaTrainOptions): Promise<TinyClipReport> {
  const log = opts.log ?? (() => undefined);
  const specs = tinyClipTensors(shape);
  specs.set('head.weight', { shape: [shape.embedDim, SLOTS * CLASSES], init: { normal: shape.embedDim ** -0.5 } });
  specs.set('head.bias', { shape: [SLOTS * CLASSES], init: { constant: 0 } });
  const source = freshTensors(specs, opts.seed);
  const forward = buildPretrainingForward(shape, source);
  const loss = crossEntropy(forward.logits, forward.graph.input('targets', 'int64', ['batch', SLOTS]), IGNORE);
  const training = buildTrainingGraph(forward.graph, loss, { trainable: () => true, optimizer: { betas: [0.9, 0.98], weightDecay: 0.1 }, clipGradNorm: 1 });
  const parameters = [...specs].filter(([name]) => name.startsWith('visual.')).reduce((n, [, s]) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  log(`tiny CLIP: ${parameters} parameters (width ${shape.width}, ${shape.layers} blocks, ${shape.imageSize} px); ${opts.steps > 0 ? `pretraining ${opts.steps} steps` : 'left random'}`);
  const trainer = await Trainer.create(training, { threads: opts.threads });
  const started = performance.now();
  const losses: number[] = [];
  const pictures = pictureStream(opts.seed, shape.imageSize);
  const pixelCount = 3 * shape.imageSize * shape.imageSize;
  try {
    for (let step = 0; step < opts.steps; step++) {
      const pixels = new Float32Array(opts.batchSize * pixelCount);
      const targets = new BigInt64Array(opts.batchSize * SLOTS);
      for (let b = 0; b < opts.batchSize; b++) {
        const picture = (await pictures.next()).value as { pixels: Float32Array; targets: number[] };
        pixels.set(picture.pixels, b * pixelCount);
        picture.targets.forEach((t, s) => (targets[b * SLOTS + s] = BigInt(t)));
      }
      const lr = warmupCosine(opts.lr, step, opts.steps, opts.warmup);
      const result = await trainer.run({
        pixel_values: new ort.Tensor('float32', pixels, [opts.batchSize, 3, shape.imageSize, shape.imageSize]),
        targets: new ort.Tensor('int64', targets, [opts.batchSize, SLOTS]),
      }, lr);
      losses.push(result.loss);
      if ((step + 1) % 50 === 0 || step + 1 === opts.steps) log(`tiny CLIP step ${step + 1}/${opts.steps}: loss ${result.loss.toFixed(3)}`);
    }
    const trained = checkpointTensors(forward.graph, new Map(trainer.tensors.map((t) => [t.name, trainer.param(t.name) as Float32Array])), (name) => source.info(name).shape);
    await saveTinyClip(dir, shape, trained, specs);
  } finally {
    await trainer.dispose();
  }
  return { parameters, steps: opts.steps, seconds: (performance.now() - started) / 1000, ...lossEnds(losses) };
}

/** The `visual.*` tensors as a torch.save'd state dict, and config.json with the geometry. */
async function saveTinyClip(dir: string, shape: TinyClipShape, tensors: ReadonlyMap<string, Float32Array>, specs: ReadonlyMap<string, TensorSpec>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const state: Record<string, SavedValue> = {};
  for (const name of [...specs.keys()].filter((n) => n.startsWith('visual.')).sort()) state[name] = tensor('F32', specs.get(name)!.shape, tensors.get(name)!);
  await torchSave(join(dir, TINY_CLIP_FILE), { kind: 'ordered', entries: state }, 'ViT-lab');
  const config = { width: shape.width, layers: shape.layers, heads: shape.heads, patch: shape.patch, image_resolution: shape.imageSize, embed_dim: shape.embedDim };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
