/**
 * LLaVA-1.5 in the llava-hf layout (transformers LlavaForConditionalGeneration): a CLIP vision tower whose
 * selected hidden state goes through a two-layer projector into a LLaMA decoder, one visual token per patch.
 */
import { InputError } from '../errors.js';
import { Graph, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { WeightScope } from '../graph/weights.js';
import { openCheckpoint, type TensorSource } from '../io/checkpoint.js';
import { Session } from '../runtime/session.js';
import { loadTokenizer } from '../text/load.js';
import type { RGBImage } from '../vision/image.js';
import { preprocessLlavaPad } from '../vision/pipelines.js';
import { clipHiddenState, clipVisionConfigFromHf, dropClassToken, HF_CLIP_NAMING, type ClipVisionConfig } from './clip.js';
import type { ChatModel, LoadModelOptions } from './index.js';
import { linear } from './linear.js';
import { llamaConfigFromHf, type LlamaConfig } from './llama/config.js';
import { prefixedLayout } from './llama/layout.js';
import { CausalLM } from './llama/load.js';
import { checkVisualWidth, encodeImages, visualChatModel } from './visual-prompt.js';
import { buildVisualTrainingForward, type VisualTrainingForward } from './visual-training.js';
import { llavaVisionFlops } from './flops.js';

export interface LlavaConfig {
  text: LlamaConfig;
  vision: ClipVisionConfig;
  /** llava-hf's `<image>` token id; prompts mark images with IMAGE_TOKEN_INDEX (-200) instead. */
  imageTokenIndex: number;
  /** transformers' hidden_states index of the CLIP layer whose output is used (-2: the penultimate layer). */
  featureLayer: number;
  /** 'default' drops the class token, 'full' keeps it. */
  keepClassToken: boolean;
  projectorBias: boolean;
}

type Json = Record<string, unknown>;

/**
 * transformers LlamaConfig defaults: llava-hf/llava-1.5-7b-hf's text_config lists only what differs from them
 * (no hidden_size, layers or heads), and transformers fills in the rest.
 */
const LLAMA_DEFAULTS: Json = {
  hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
  max_position_embeddings: 2048, rms_norm_eps: 1e-6, vocab_size: 32000,
};

/** transformers LlavaConfig (configuration_llava.py), defaults included. */
export function llavaConfigFromHf(cfg: Json, where: string): LlavaConfig {
  const sub = (key: string, modelType: string): Json => {
    const v = cfg[key] ?? {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError(`${where}: '${key}' must be an object`);
    const type = (v as Json)['model_type'] ?? modelType;
    if (type !== modelType) throw new InputError(`${where}: ${key}.model_type '${String(type)}' is not supported (${modelType} only)`);
    return v as Json;
  };
  const featureLayer = cfg['vision_feature_layer'] ?? -2;
  if (typeof featureLayer !== 'number' || !Number.isInteger(featureLayer)) {
    throw new InputError(`${where}: vision_feature_layer must be one integer (lists of layers are not supported)`);
  }
  const strategy = cfg['vision_feature_select_strategy'] ?? 'default';
  if (strategy !== 'default' && strategy !== 'full') throw new InputError(`${where}: vision_feature_select_strategy '${String(strategy)}' is not supported (default or full)`);
  // ACT2FN['gelu'] is the exact (erf) GELU.
  const act = cfg['projector_hidden_act'] ?? 'gelu';
  if (act !== 'gelu') throw new InputError(`${where}: projector_hidden_act '${String(act)}' is not supported (gelu only)`);
  const imageTokenIndex = cfg['image_token_index'] ?? 32000;
  if (typeof imageTokenIndex !== 'number' || !Number.isInteger(imageTokenIndex)) throw new InputError(`${where}: image_token_index must be an integer`);
  return {
    text: llamaConfigFromHf({ ...LLAMA_DEFAULTS, ...sub('text_config', 'llama') }, `${where} text_config`),
    vision: clipVisionConfigFromHf(sub('vision_config', 'clip_vision_model'), `${where} vision_config`),
    imageTokenIndex,
    featureLayer,
    keepClassToken: strategy === 'full',
    projectorBias: cfg['multimodal_projector_bias'] !== false,
  };
}

/**
 * pixel_values float32 [batch, 3, S, S] → image_features float32 [batch, visual tokens, LM hidden]
 * (modeling_llava.py get_image_features, then LlavaMultiModalProjector: linear_2(gelu(linear_1(x)))).
 * The tower and projector compute in fp32 whatever the LM's dtype: they run once per image.
 */
export function buildLlavaVisionGraph(config: LlavaConfig, source: TensorSource): Graph {
  const graph = new Graph('llava-vision');
  const size = config.vision.imageSize;
  const pixels = graph.input('pixel_values', 'float32', ['batch', 3, size, size]);
  graph.output(llavaVisualTokens(config, source, pixels), 'image_features');
  return graph;
}

/** The tower and projector on `pixels` in their graph: [batch, visual tokens, LM hidden]. */
export function llavaVisualTokens(config: LlavaConfig, source: TensorSource, pixels: Value): Value {
  const graph = pixels.graph;
  const tower = { config: config.vision, scope: new WeightScope(graph, source, 'vision_tower.vision_model'), naming: HF_CLIP_NAMING, dtype: 'fp32' as const };
  const hidden = clipHiddenState(tower, pixels, config.featureLayer);
  const selected = config.keepClassToken ? hidden : dropClassToken(hidden);
  const projector = new WeightScope(graph, source, 'multi_modal_projector');
  const bias = (leaf: string) => (config.projectorBias ? leaf : undefined);
  const h = op.gelu(linear(projector, 'linear_1.weight', selected, 'fp32', bias('linear_1.bias')));
  const features = linear(projector, 'linear_2.weight', h, 'fp32', bias('linear_2.bias'));
  checkVisualWidth(features, config.text.hidden, projector.name('linear_2.weight'));
  return features;
}

/** The training forward (visual-training.ts) of a llava-hf model: its tower, projector and decoder in one graph. */
export function buildLlavaTrainingForward(config: LlavaConfig, source: TensorSource, addedRows?: string): VisualTrainingForward {
  return buildVisualTrainingForward('llava-train', config.vision.imageSize, source, config.text, prefixedLayout('language_model.'),
    (pixels) => llavaVisualTokens(config, source, pixels), addedRows);
}

/** Loads a llava-hf LLaVA-1.5 directory whose config.json (already read) is `cfg`. */
export async function loadLlava(dir: string, cfg: Json, opts: LoadModelOptions): Promise<ChatModel> {
  const config = llavaConfigFromHf(cfg, `${dir}/config.json`);
  const tokenizer = await loadTokenizer(dir);
  const source = await openCheckpoint(dir);
  let lm: CausalLM | undefined;
  let vision: Session;
  let flopsPerImage: number;
  try {
    lm = await CausalLM.build({ config: config.text, source, layout: prefixedLayout('language_model.') }, opts);
    vision = await Session.fromGraph(buildLlavaVisionGraph(config, source), { threads: opts.threads });
    flopsPerImage = llavaVisionFlops(config, source.info(`vision_tower.vision_model.encoder.layers.0.${HF_CLIP_NAMING.fc1}.weight`).shape[0]!);
  } catch (err) {
    await lm?.dispose();
    throw err;
  } finally {
    // Both sessions and the embedding table hold their own copies of the weights now.
    await source.close();
  }
  const size = config.vision.imageSize;

  /**
   * Visual tokens of new images, all through the tower in one run. LLaVA-1.5 pads to a square before the CLIP
   * processor (image_aspect_ratio 'pad' in its released configs, llava/mm_utils.py process_images); llava-hf's own
   * processor would crop instead, and the fixture follows the original.
   */
  const encode = (images: readonly RGBImage[]) => encodeImages(vision, images, size, (img, s) => preprocessLlavaPad(img, s).pixelValues, 'image_features');

  return visualChatModel({
    family: 'llava',
    lm,
    tokenizer,
    encode,
    checkIds(ids) {
      if (ids.includes(config.imageTokenIndex)) {
        throw new InputError(`token id ${config.imageTokenIndex} is llava-hf's <image> placeholder: mark each image with one -200 instead`);
      }
    },
    disposeVision: () => vision.dispose(),
    flopsPerImage,
  });
}
