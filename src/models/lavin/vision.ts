/**
 * LaVIN's image path (clip/model.py VisionTransformer as LaVIN modifies it, lavin/mm_adaptation.py): OpenAI's CLIP
 * ViT with a router adapter before attention in every block, x += attn(adapter(ln_1(x))), the class token of the
 * residual stream taken after every (blocks / n_prompt)-th block — no ln_post, no proj — then the projector
 * adapter_proj: Linear → SiLU → Linear into the LLaMA's width (a plain SiLU, not the paper's SwiGLU).
 */
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError } from '../../errors.js';
import { Graph, type Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import { WeightScope } from '../../graph/weights.js';
import type { TensorSource } from '../../io/checkpoint.js';
import { clipEmbeddings, clipLayerNorm, clipMlp, clipPreLayerNorm, clipSelfAttention, clipVisionConfigFromOpenAi, OPENAI_CLIP_NAMING, type ClipTower, type ClipVisionConfig } from '../clip.js';
import { readJson } from '../llama/config.js';
import { mixtureAdapter, routeWeights, type AdapterDropout } from './adapter.js';
import { LAVIN_MODULES, type LavinSettings } from './settings.js';

/**
 * The visual tower's geometry from an OpenAI CLIP file (state dict or TorchScript archive, tensors `visual.*`).
 * OpenAI's build_model derives heads = width / 64; a `config.json` beside the file may say otherwise (tiny towers),
 * and what else it states must agree with the tensors.
 */
export async function lavinClipConfig(source: TensorSource, file: string): Promise<ClipVisionConfig> {
  const configPath = join(dirname(file), 'config.json');
  const cfg = await stat(configPath).then((s) => s.isFile(), () => false) ? await readJson(configPath) : {};
  if (!source.has('visual.conv1.weight')) {
    throw new InputError(`${file}: no tensor 'visual.conv1.weight': not an OpenAI CLIP (a state dict or OpenAI's TorchScript archive)`);
  }
  const width = source.info('visual.conv1.weight').shape[0]!;
  const heads = cfg['heads'] ?? Math.floor(width / 64);
  if (typeof heads !== 'number' || !Number.isInteger(heads) || heads < 1) throw new InputError(`${cfg['heads'] === undefined ? file : configPath}: heads ${String(heads)} is not a positive integer${cfg['heads'] === undefined ? ` (width ${width} / 64; give 'heads' in a config.json beside it)` : ''}`);
  const config = clipVisionConfigFromOpenAi(source, 'visual.', heads, file);
  const stated: Record<string, number> = { width: config.hidden, layers: config.layers, patch: config.patchSize, image_resolution: config.imageSize };
  for (const [key, value] of Object.entries(stated)) {
    if (cfg[key] !== undefined && cfg[key] !== value) throw new InputError(`${configPath}: ${key} ${String(cfg[key])} contradicts ${file}'s tensors (${value})`);
  }
  return config;
}

/** The image path's values in a graph: each block's router weights, the class tokens, the visual tokens. */
export interface LavinVision {
  /** Per block, [batch, tokens, 2]: each token routes on its own ln_1 feature (per image; see the README). */
  routes: Value[];
  /** [batch, n_prompt, clip width]: the class token after every (blocks / n_prompt)-th block. */
  cls: Value;
  /** [batch, n_prompt, LLaMA width]. */
  tokens: Value;
}

/**
 * pixels [batch, 3, S, S] (preprocessLavin) → LaVIN's visual tokens. `clip` holds the tower (`visual.*`), `adapters`
 * the checkpoint (names under `settings.prefix`).
 */
export function buildLavinVision(graph: Graph, clip: TensorSource, adapters: TensorSource, config: ClipVisionConfig, settings: LavinSettings, pixels: Value,
                                 dropout?: AdapterDropout): LavinVision {
  const tower: ClipTower = { config, scope: new WeightScope(graph, clip, 'visual'), naming: OPENAI_CLIP_NAMING, dtype: 'fp32' };
  const every = config.layers / settings.visualTokens;
  const routes: Value[] = [];
  const cls: Value[] = [];
  let x = clipPreLayerNorm(tower, clipEmbeddings(tower, pixels));
  for (let i = 0; i < config.layers; i++) {
    const adapter = new WeightScope(graph, adapters, settings.prefix + LAVIN_MODULES.clip(i));
    const block = OPENAI_CLIP_NAMING.layer(i);
    const y = clipLayerNorm(tower, `${block}.${OPENAI_CLIP_NAMING.norm1}`, x);
    const route = routeWeights(adapter, y, settings.clip);
    routes.push(route);
    const h = op.add(x, clipSelfAttention(tower, i, mixtureAdapter(adapter, y, route, settings.clip, dropout)));
    x = op.add(h, clipMlp(tower, i, clipLayerNorm(tower, `${block}.${OPENAI_CLIP_NAMING.norm2}`, h)));
    if ((i + 1) % every === 0) cls.push(op.slice(x, [1], [0], [1]));
  }
  const features = op.concat(cls, 1);
  const projector = new WeightScope(graph, adapters, `${settings.prefix}adapter_proj`);
  // adapter_proj's Linear weights [out, in] are used as stored (training updates them in LaVIN's layout).
  const project = (x: Value, leaf: string) => op.add(op.matmul(x, op.transpose(projector.weight(`${leaf}.weight`), [1, 0])), projector.weight(`${leaf}.bias`));
  return { routes, cls: features, tokens: project(op.silu(project(features, 'conv_A')), 'conv_B') };
}

/** The graph the model runs per batch of images: pixel_values → visual_tokens. */
export function lavinVisionGraph(clip: TensorSource, adapters: TensorSource, config: ClipVisionConfig, settings: LavinSettings): Graph {
  const graph = new Graph('lavin-vision');
  const size = config.imageSize;
  const pixels = graph.input('pixel_values', 'float32', ['batch', 3, size, size]);
  graph.output(buildLavinVision(graph, clip, adapters, config, settings, pixels).tokens, 'visual_tokens');
  return graph;
}
