/**
 * Randomly initialised multimodal models in their official layouts, for the suites that compare them, written
 * once into os.tmpdir() and reused by later runs (the directory name carries a digest of the config, which holds
 * every shape):
 *
 *   LLaVA-HR     luogen1996/LLaVA-HR's layout: config.json with `is_multipath_encoder`, `input_image_size`,
 *                `freeze_vision: false` (MR-Adapters present) and the tower blocks the loader reads when the towers
 *                are not the released ones (`mm_vision_tower_config`, `vision_tower_slow_config`, as in
 *                test/fixtures/tiny-llava-hr); weights under `model.vision_tower.*`, `model.mm_projector.*` and the
 *                LLaMA's HF names, in one model.safetensors (the loader prefers it to pytorch_model.bin).
 *   LLaVA-1.5    llava-hf's LlavaForConditionalGeneration layout: `vision_tower.vision_model.*`,
 *                `multi_modal_projector.*`, the LLaMA under `language_model.`.
 *
 * Both take their LLM from randomLlamaTensors, so the same LLaMA shape gives both models the same LLM weights.
 * Matrices and convolution kernels are N(0, 0.02²) from a seeded generator, norms 1 and 0, biases 0, the
 * ConvNeXt layer scales 1 (timm's 1e-6 would leave the blocks doing nothing visible, not cheaper). The ConvNeXt's
 * unused `head.*` is not written.
 */
import { createHash } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-write.js';
import { INIT_STD, llamaConfigKeys, normals, randomLlamaTensors, type RandomLlamaShape } from './random-llama.js';

/** A CLIP ViT with patch 14 (OpenAI's ViT-L/14 geometry: width 1024, 16 heads, MLP 4096, 24 layers). */
export interface VitShape {
  hidden: number;
  heads: number;
  mlp: number;
  layers: number;
  /** The image size its position table is for: 1 + (imageSize / 14)² rows. */
  imageSize: number;
}

/** A timm ConvNeXt (stem 4×4, 7×7 depthwise blocks, MLP ratio 4). */
export interface ConvNextShape {
  depths: readonly number[];
  dims: readonly number[];
}

export interface LlavaHrShape {
  llm: RandomLlamaShape;
  vit: VitShape;
  convnext: ConvNextShape;
  /** S: the image side the ConvNeXt sees; the ViT sees max(S·14/32, its image size). */
  inputImageSize: number;
}

export interface Llava15Shape {
  llm: RandomLlamaShape;
  /** imageSize is also the size the tower runs at (llava-hf has no resampling). */
  vit: VitShape;
}

const PATCH = 14;
const VISION_SEED = 4242;

type Json = Record<string, unknown>;

function clipVisionConfig(vit: VitShape): Json {
  return {
    model_type: 'clip_vision_model', hidden_size: vit.hidden, intermediate_size: vit.mlp, num_attention_heads: vit.heads,
    num_hidden_layers: vit.layers, image_size: vit.imageSize, patch_size: PATCH, num_channels: 3, hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
  };
}

/** LLaVA-HR's config.json for `shape` (the official keys, as test/fixtures/tiny-llava-hr/config.json has them). */
export function llavaHrConfigJson(shape: LlavaHrShape): Json {
  const { llm, vit, convnext, inputImageSize } = shape;
  return {
    architectures: ['LlavaLlamaForCausalLM'], model_type: 'llava', ...llamaConfigKeys(llm),
    is_multipath_encoder: true, input_image_size: inputImageSize, freeze_vision: false, delay_load: false,
    image_aspect_ratio: 'pad', image_grid_pinpoints: null, mm_projector_type: 'mlp2x_gelu', mm_hidden_size: vit.hidden,
    mm_use_im_patch_token: false, mm_use_im_start_end: false, mm_vision_select_feature: 'patch', mm_vision_select_layer: -2,
    mm_vision_tower: `random/clip-vit-w${vit.hidden}-l${vit.layers}-patch14-${vit.imageSize}`, mm_vision_tower_config: clipVisionConfig(vit),
    vision_tower_slow: `convnext_random_w${convnext.dims[0]}`,
    vision_tower_slow_config: { depths: convnext.depths, dims: convnext.dims, norm_eps: 1e-6, patch_size: 4, kernel_size: 7, mlp_ratio: 4, layer_scale: true },
    tune_mm_mlp_adapter: false, freeze_mm_mlp_adapter: false, use_mm_proj: true, pretraining_tp: 1, use_cache: true,
    transformers_version: '4.31.0',
  };
}

/** llava-hf LLaVA-1.5's config.json for `shape`. The prompts mark the image with -200, so `<image>`'s id is not used. */
export function llava15ConfigJson(shape: Llava15Shape): Json {
  return {
    architectures: ['LlavaForConditionalGeneration'], model_type: 'llava', image_token_index: shape.llm.vocab,
    projector_hidden_act: 'gelu', multimodal_projector_bias: true, vision_feature_layer: -2, vision_feature_select_strategy: 'default',
    tie_word_embeddings: false, torch_dtype: 'float32',
    text_config: { model_type: 'llama', ...llamaConfigKeys(shape.llm) },
    vision_config: clipVisionConfig(shape.vit),
  };
}

/** Named random tensors in the order they are asked for, each from its own seed. */
class TensorSet {
  readonly tensors: Record<string, TensorToWrite> = {};
  private seed = VISION_SEED;

  normal(name: string, shape: readonly number[]): void {
    this.tensors[name] = { dtype: 'F32', shape, data: normals(shape.reduce((a, b) => a * b, 1), this.seed++, INIT_STD) };
  }

  filled(name: string, n: number, value: number): void {
    this.tensors[name] = { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(value) };
  }

  /** A Linear or Conv2d `module`: random `weight` of `shape`, zero bias of shape[0]. */
  layer(module: string, shape: readonly number[]): void {
    this.normal(`${module}.weight`, shape);
    this.filled(`${module}.bias`, shape[0]!, 0);
  }

  norm(module: string, n: number): void {
    this.filled(`${module}.weight`, n, 1);
    this.filled(`${module}.bias`, n, 0);
  }
}

/** transformers CLIPVisionTransformer weights under `root` (…`vision_model`). */
function addClip(t: TensorSet, root: string, vit: VitShape): void {
  const d = vit.hidden;
  t.normal(`${root}.embeddings.class_embedding`, [d]);
  t.normal(`${root}.embeddings.patch_embedding.weight`, [d, 3, PATCH, PATCH]);
  t.normal(`${root}.embeddings.position_embedding.weight`, [1 + (vit.imageSize / PATCH) ** 2, d]);
  t.norm(`${root}.pre_layrnorm`, d);
  for (let i = 0; i < vit.layers; i++) {
    const layer = `${root}.encoder.layers.${i}`;
    for (const p of ['q', 'k', 'v', 'out']) t.layer(`${layer}.self_attn.${p}_proj`, [d, d]);
    t.norm(`${layer}.layer_norm1`, d);
    t.layer(`${layer}.mlp.fc1`, [vit.mlp, d]);
    t.layer(`${layer}.mlp.fc2`, [d, vit.mlp]);
    t.norm(`${layer}.layer_norm2`, d);
  }
  t.norm(`${root}.post_layernorm`, d);
}

/** timm ConvNeXt weights under `root`. */
function addConvNext(t: TensorSet, root: string, shape: ConvNextShape): void {
  const { depths, dims } = shape;
  t.layer(`${root}.stem.0`, [dims[0]!, 3, 4, 4]);
  t.norm(`${root}.stem.1`, dims[0]!);
  dims.forEach((c, s) => {
    const stage = `${root}.stages.${s}`;
    if (s > 0) {
      t.norm(`${stage}.downsample.0`, dims[s - 1]!);
      t.layer(`${stage}.downsample.1`, [c, dims[s - 1]!, 2, 2]);
    }
    for (let j = 0; j < depths[s]!; j++) {
      const block = `${stage}.blocks.${j}`;
      t.layer(`${block}.conv_dw`, [c, 1, 7, 7]);
      t.norm(`${block}.norm`, c);
      t.layer(`${block}.mlp.fc1`, [4 * c, c]);
      t.layer(`${block}.mlp.fc2`, [c, 4 * c]);
      t.filled(`${block}.weight`, c, 1);
    }
  });
}

function llavaHrTensors(shape: LlavaHrShape): Record<string, TensorToWrite> {
  const t = new TensorSet();
  const tower = 'model.vision_tower';
  const [cf, cs, hidden] = [shape.vit.hidden, shape.convnext.dims.at(-1)!, shape.llm.hidden];
  addClip(t, `${tower}.fast_vision_tower.vision_tower.vision_model`, shape.vit);
  addConvNext(t, `${tower}.slow_vision_tower.vision_tower`, shape.convnext);
  for (let a = 0; a < 3; a++) {
    const adapter = `${tower}.align_stages_latent.${a}`;
    t.layer(`${adapter}.slow_conv`, [cs, cs, 1, 1]);
    t.layer(`${adapter}.slow_proj`, [cf, cs, 1, 1]);
    t.layer(`${adapter}.fast_conv`, [cf, 1, 7, 7]);
    t.layer(`${adapter}.fast_proj`, [cf, cf, 1, 1]);
    t.layer(`${adapter}.gate.0`, [cf / 2, 2 * cf]);
    t.layer(`${adapter}.gate.2`, [1, cf / 2]);
  }
  t.layer(`${tower}.align_stages.0.fast_proj`, [cf, cf]);
  t.layer(`${tower}.align_stages.0.slow_proj`, [cf, cs]);
  t.layer('model.mm_projector.0', [hidden, cf]);
  t.layer('model.mm_projector.2', [hidden, hidden]);
  return { ...randomLlamaTensors(shape.llm), ...t.tensors };
}

function llava15Tensors(shape: Llava15Shape): Record<string, TensorToWrite> {
  const t = new TensorSet();
  addClip(t, 'vision_tower.vision_model', shape.vit);
  t.layer('multi_modal_projector.linear_1', [shape.llm.hidden, shape.vit.hidden]);
  t.layer('multi_modal_projector.linear_2', [shape.llm.hidden, shape.llm.hidden]);
  return { ...randomLlamaTensors(shape.llm, 'language_model.'), ...t.tensors };
}

/** `config` and its weights in a directory named by a digest of the config, written unless an earlier run did. */
async function modelDir(kind: string, config: Json, tensors: () => Record<string, TensorToWrite>, log: (message: string) => void): Promise<string> {
  const text = JSON.stringify(config, null, 2);
  const digest = createHash('sha256').update(`${text}\nseed ${VISION_SEED}`).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `egret-bench-${kind}-${digest}`);
  const configPath = join(dir, 'config.json');
  if (await stat(configPath).then(() => true, () => false)) return dir;
  await mkdir(dir, { recursive: true });
  log(`writing a random ${kind} to ${dir}`);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors());
  // config.json last: its presence says the directory is complete.
  await writeFile(configPath, text);
  return dir;
}

export function randomLlavaHrDir(shape: LlavaHrShape, log: (message: string) => void): Promise<string> {
  return modelDir('llava-hr', llavaHrConfigJson(shape), () => llavaHrTensors(shape), log);
}

export function randomLlava15Dir(shape: Llava15Shape, log: (message: string) => void): Promise<string> {
  return modelDir('llava15', llava15ConfigJson(shape), () => llava15Tensors(shape), log);
}
