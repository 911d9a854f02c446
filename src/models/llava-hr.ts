/**
 * LLaVA-HR (luogen1996/LLaVA-HR, "Feast Your Eyes") in its original layout: config.json with
 * `is_multipath_encoder: true`, LlavaLlamaForCausalLM weights (sharded torch.save .bin files). Its multipath
 * vision tower (multipath_encoder_wapper.py MultiPathCLIPVisionTower) runs a CLIP ViT on a low-resolution copy of
 * the image and a ConvNeXt on the full one, joined by MRA (src/methods/mra.ts); a 2-layer GELU MLP projects the
 * result into the LLaMA decoder's embedding space.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { WeightScope, identityLayout } from '../graph/weights.js';
import { openCheckpoint, type TensorSource } from '../io/checkpoint.js';
import { isObject } from '../io/json.js';
import { canAlign, mraFusion, mrAdapter } from './llava-hr/mr-adapter.js';
import { ort, Session } from '../runtime/session.js';
import { loadTokenizer } from '../text/load.js';
import type { RGBImage } from '../vision/image.js';
import { clipImageProcessor, preprocessLlavaHr } from '../vision/pipelines.js';
import {
  clipEmbeddings, clipEncoder, clipPositionTable, clipPreLayerNorm, clipVisionConfigFromHf, dropClassToken, HF_CLIP_NAMING,
  type ClipTower, type ClipVisionConfig,
} from './clip.js';
import { convnextConfigFromName, convnextGrid, convnextStages, type ConvNextConfig } from './convnext.js';
import type { ChatModel, LoadModelOptions } from './index.js';
import { linear } from './linear.js';
import { llamaConfigFromHf, type LlamaConfig } from './llama/config.js';
import { CausalLM } from './llama/load.js';
import { checkVisualWidth, visualChatModel } from './visual-prompt.js';
import { llavaHrVisionFlops } from './flops.js';

export interface LlavaHrConfig {
  /** S: the side of the preprocessed square image, which the ConvNeXt sees whole. */
  inputImageSize: number;
  /** 'pad' pastes the image on a square first (expand2square); anything else resizes and centre-crops. */
  padToSquare: boolean;
  vit: ClipVisionConfig;
  convnext: ConvNextConfig;
  /** MR-Adapters between the ViT's layer groups (`freeze_vision: false`, stage-2 models). */
  adapters: boolean;
  llm: LlamaConfig;
}

type Json = Record<string, unknown>;

/** `openai/clip-vit-large-patch14-336`, the low-resolution path of every released LLaVA-HR. */
const CLIP_VIT_L_336: ClipVisionConfig = { hidden: 1024, layers: 24, heads: 16, patchSize: 14, imageSize: 336, layerNormEps: 1e-5, activation: 'quick_gelu' };

/**
 * The towers' geometry comes from the names in `mm_vision_tower` / `vision_tower_slow`, as the official code
 * builds them, unless `mm_vision_tower_config` / `vision_tower_slow_config` describe the towers (test models).
 */
export function llavaHrConfig(cfg: Json, where: string): LlavaHrConfig {
  const S = cfg['input_image_size'];
  if (typeof S !== 'number' || !Number.isInteger(S) || S < 32) throw new InputError(`${where}: 'input_image_size' must be an integer ≥ 32`);
  if (cfg['mm_projector_type'] !== 'mlp2x_gelu') throw new InputError(`${where}: mm_projector_type '${String(cfg['mm_projector_type'])}' is not supported (mlp2x_gelu only)`);
  if (cfg['mm_use_im_start_end'] === true) throw new InputError(`${where}: mm_use_im_start_end is not supported`);
  const vit = isObject(cfg['mm_vision_tower_config'])
    ? clipVisionConfigFromHf(cfg['mm_vision_tower_config'], `${where} mm_vision_tower_config`)
    : namedClipTower(cfg['mm_vision_tower'], where);
  // The ViT runs in four equal groups with an adapter after each of the first three (the official forward asserts it).
  if (vit.layers % 4 !== 0) throw new InputError(`${where}: the ViT's ${vit.layers} layers do not split into 4 equal groups`);
  const slowName = cfg['vision_tower_slow'];
  const slow = cfg['vision_tower_slow_config'];
  let convnext: ConvNextConfig;
  if (isObject(slow)) {
    convnext = convnextConfigFromJson(slow, `${where} vision_tower_slow_config`);
  } else if (typeof slowName === 'string') {
    convnext = convnextConfigFromName(slowName);
  } else {
    throw new InputError(`${where}: 'vision_tower_slow' must name the ConvNeXt tower`);
  }
  const config: LlavaHrConfig = {
    inputImageSize: S,
    padToSquare: cfg['image_aspect_ratio'] === 'pad',
    vit,
    convnext,
    adapters: cfg['freeze_vision'] === false,
    llm: llamaConfigFromHf(cfg, where),
  };
  const [mapSide, grid] = [convnextGrid(convnext, S), Math.floor(vitInputSize(config) / vit.patchSize)];
  if (!canAlign(mapSide, grid)) {
    throw new InputError(`${where}: input_image_size ${S} gives a ${mapSide}×${mapSide} ConvNeXt map that cannot be aligned to the ${grid}×${grid} ViT grid (one cell count must divide the other)`);
  }
  return config;
}

function namedClipTower(name: unknown, where: string): ClipVisionConfig {
  // Released configs name the tower by hub id or by a local copy's path.
  if (typeof name === 'string' && /clip-vit-large-patch14-336\/?$/.test(name)) return CLIP_VIT_L_336;
  throw new InputError(`${where}: mm_vision_tower '${String(name)}' is not a known tower (openai/clip-vit-large-patch14-336) and no mm_vision_tower_config describes it`);
}

function convnextConfigFromJson(cfg: Json, where: string): ConvNextConfig {
  const ints = (key: string): number[] => {
    const v = cfg[key];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x > 0)) throw new InputError(`${where}: '${key}' must be a list of positive integers`);
    return v as number[];
  };
  const num = (key: string, fallback: number): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) throw new InputError(`${where}: '${key}' must be a positive number`);
    return v;
  };
  return { depths: ints('depths'), dims: ints('dims'), normEps: num('norm_eps', 1e-6), patchSize: num('patch_size', 4), kernelSize: num('kernel_size', 7) };
}

/**
 * R, the ViT's input side: `max(int(S / 32 * 14), 336)` in the official forward, i.e. the ConvNeXt's grid in
 * patches, never below the ViT's own image size (14 and 336 are the patch and image size of its tower).
 */
export function vitInputSize(config: LlavaHrConfig): number {
  return Math.max(Math.trunc((config.inputImageSize / 32) * config.vit.patchSize), config.vit.imageSize);
}

/** Visual tokens per image: the ViT grid's cells. */
export function visualTokenCount(config: LlavaHrConfig): number {
  return Math.floor(vitInputSize(config) / config.vit.patchSize) ** 2;
}

/** Every intermediate of the multipath tower, for tests and inspection; a model outputs `visualTokens`. */
export interface MultipathValues {
  vitInput: Value;
  vitPositionTable: Value;
  vitEmbeddings: Value;
  convnextStages: Value[];
  afterAdapters: Value[];
  gatesTanh: Value[];
  vitFinal: Value;
  fused: Value;
  visualTokens: Value;
}

/**
 * The multipath tower and projector on pixels [images, 3, S, S] (normalised once, shared by both paths);
 * `scope` is the checkpoint's root (names `model.vision_tower.*`, `model.mm_projector.*`).
 */
export function buildMultipathVision(scope: WeightScope, config: LlavaHrConfig, pixels: Value): MultipathValues {
  const tower = scope.at('model.vision_tower');
  // The vision path computes in fp32 whatever --dtype says: only the decoder's linears are quantised.
  const vit: ClipTower = { config: config.vit, scope: tower.at('fast_vision_tower.vision_tower.vision_model'), naming: HF_CLIP_NAMING, dtype: 'fp32' };
  const R = vitInputSize(config);
  const grid = Math.floor(R / config.vit.patchSize);
  // The ViT sees an align-corners bilinear resize of the normalised image (MultiPathCLIPVisionTower.forward).
  const vitInput = op.interpolateBilinearAlignCorners(pixels, [R, R]);
  const vitPositionTable = positionTable(vit, grid);
  // LLaVA-HR drops CLS before pre_layrnorm: the encoder never sees a class token.
  const vitEmbeddings = clipPreLayerNorm(vit, dropClassToken(clipEmbeddings(vit, vitInput, vitPositionTable)));
  const convnext = convnextStages(tower.at('slow_vision_tower.vision_tower'), config.convnext, pixels);
  const high = convnext.at(-1)!;
  const group = config.vit.layers / 4;
  const afterAdapters: Value[] = [];
  const gatesTanh: Value[] = [];
  let y = vitEmbeddings;
  for (let a = 0; a < 3; a++) {
    y = clipEncoder(vit, y, a * group, (a + 1) * group);
    if (config.adapters) {
      const out = mrAdapter(tower.at('align_stages_latent').at(a), y, high, grid);
      y = out.tokens;
      afterAdapters.push(y);
      gatesTanh.push(out.gateTanh);
    }
  }
  // The last layer's raw output: no post_layernorm, and mm_vision_select_layer is ignored.
  const vitFinal = clipEncoder(vit, y, 3 * group, 4 * group);
  const fused = mraFusion(tower.at('align_stages').at(0), vitFinal, high, grid);
  const visualTokens = projectVisual(scope.at('model.mm_projector'), fused);
  return { vitInput, vitPositionTable, vitEmbeddings, convnextStages: convnext, afterAdapters, gatesTanh, vitFinal, fused, visualTokens };
}

/** LLaVA's mlp2x_gelu projector (`model.mm_projector.{0,2}` in `projector`): fused tokens → the decoder's width. */
export function projectVisual(projector: WeightScope, fused: Value): Value {
  return linear(projector, '2.weight', op.gelu(linear(projector, '0.weight', fused, 'fp32', '0.bias')), 'fp32', '2.bias');
}

/**
 * The position table for a grid×grid ViT: the stored one, or its grid part resampled with bicubic, antialias=True,
 * align_corners=False (clip_encoder.py resample_pos_embed), the class row unchanged.
 */
function positionTable(vit: ClipTower, grid: number): Value {
  const table = clipPositionTable(vit);
  const { hidden, imageSize, patchSize } = vit.config;
  const stored = imageSize / patchSize;
  const rows = table.shape[0];
  if (rows !== stored * stored + 1) throw new InputError(`${vit.scope.name(HF_CLIP_NAMING.positionEmbedding)}: ${String(rows)} rows, expected 1 + ${stored}² for image size ${imageSize}`);
  if (grid === stored) return table;
  const cells = op.transpose(op.reshape(op.slice(table, [0], [1], [undefined]), [1, stored, stored, hidden]), [0, 3, 1, 2]);
  const resized = op.resize(cells, [grid, grid], { mode: 'cubic', coordinates: 'half_pixel', antialias: true, cubicCoeffA: -0.5 });
  return op.concat([op.slice(table, [0], [0], [1]), op.reshape(op.transpose(resized, [0, 2, 3, 1]), [grid * grid, hidden])], 0);
}

/** The vision half as a session: preprocessed pixels → visual tokens in the decoder's embedding space. */
export class LlavaHrVision {
  private constructor(
    readonly config: LlavaHrConfig,
    private readonly session: Session,
  ) {}

  static async build(config: LlavaHrConfig, source: TensorSource, opts: { threads?: number } = {}): Promise<LlavaHrVision> {
    const graph = new Graph('llava-hr-vision');
    const S = config.inputImageSize;
    const pixels = graph.input('pixel_values', 'float32', ['images', 3, S, S]);
    const scope = new WeightScope(graph, source);
    const { visualTokens } = buildMultipathVision(scope, config, pixels);
    checkVisualWidth(visualTokens, config.llm.hidden, scope.at('model.mm_projector').name('2.weight'));
    graph.output(visualTokens, 'visual_tokens');
    return new LlavaHrVision(config, await Session.fromGraph(graph, { threads: opts.threads }));
  }

  /** The image as the official processor prepares it: float32 [3, S, S]. */
  preprocess(image: RGBImage): Float32Array {
    const S = this.config.inputImageSize;
    return (this.config.padToSquare ? preprocessLlavaHr(image, S) : clipImageProcessor(image, S)).pixelValues;
  }

  /** Visual tokens of one image, [count, hidden]. */
  async encode(image: RGBImage): Promise<Float32Array> {
    return this.encodePixels(this.preprocess(image));
  }

  /** Visual tokens of one preprocessed image (float32 [3, S, S], see preprocess), [count, hidden]. */
  async encodePixels(pixels: Float32Array): Promise<Float32Array> {
    const S = this.config.inputImageSize;
    const out = await this.session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) });
    return out['visual_tokens']!.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

/** Loads a LLaVA-HR directory (CONTRACT.md "Models": config.json with `is_multipath_encoder: true`). */
export async function loadLlavaHr(dir: string, cfg: Json, opts: LoadModelOptions = {}): Promise<ChatModel> {
  const config = llavaHrConfig(cfg, join(dir, 'config.json'));
  const source = await openCheckpoint(dir);
  let vision: LlavaHrVision | undefined;
  let lm: CausalLM | undefined;
  try {
    vision = await LlavaHrVision.build(config, source, { threads: opts.threads });
    lm = await CausalLM.build({ config: config.llm, source, layout: identityLayout }, opts);
    const tokenizer = await loadTokenizer(dir);
    const [vis, decoder] = [vision, lm];
    return visualChatModel({
      family: 'llava-hr',
      lm: decoder,
      tokenizer,
      encode: async (images) => {
        const tokens: Float32Array[] = [];
        for (const image of images) tokens.push(await vis.encode(image));
        return tokens;
      },
      disposeVision: () => vis.dispose(),
      flopsPerImage: llavaHrVisionFlops(config, source.info(`model.vision_tower.fast_vision_tower.vision_tower.vision_model.encoder.layers.0.${HF_CLIP_NAMING.fc1}.weight`).shape[0]!, visualTokenCount(config)),
    });
  } catch (err) {
    await Promise.all([vision?.dispose(), lm?.dispose()]);
    throw err;
  } finally {
    // Both sessions hold their own copies of the weights once built.
    await source.close();
  }
}
