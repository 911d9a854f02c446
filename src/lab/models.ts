/**
 * The lab's tiny models, described as the official code would save them — a LLaVA-HR in its original layout
 * (config.json with `is_multipath_encoder`, LlavaLlamaForCausalLM names), a LLaVA-1.5 in llava-hf's — so that
 * everything egret does to released checkpoints runs on them unchanged. A model is its config; its tensors' names and shapes follow from it,
 * with the initialisation HF's code gives each (`initializer_range` normals, CLIP's own scaled normals, norms at one,
 * biases at zero) except the ConvNeXt's, made for training from scratch in few steps (see Specs.convnext).
 */
import type { TensorSource } from '../io/checkpoint.js';
import type { ConvNextConfig } from '../models/convnext.js';
import type { LlamaConfig } from '../models/llama/config.js';
import { buildLlavaTrainingForward, llavaConfigFromHf } from '../models/llava.js';
import { llavaHrConfig, visualTokenCount } from '../models/llava-hr.js';
import { buildLlavaHrTrainingForward } from '../models/llava-hr/training.js';
import type { VisualTrainingForward } from '../models/visual-training.js';
import type { TensorSpec } from '../train/scratch.js';
import type { RGBImage } from '../vision/image.js';
import { preprocessLlavaHr, preprocessLlavaPad } from '../vision/pipelines.js';

/** A lab LLaVA-1.5: a CLIP ViT, the projector, a LLaMA. */
export interface LabShape {
  vit: { width: number; layers: number; heads: number; patch: number; imageSize: number };
  llm: { width: number; layers: number; heads: number; intermediate: number };
  vocab: number;
}

/** A lab LLaVA-HR: the ViT is the low-resolution path, the ConvNeXt sees `imageSize` (input_image_size). */
export interface LabLlavaHrShape extends LabShape {
  imageSize: number;
  convnext: { depths: number[]; dims: number[] };
}

const STD = 0.02;
/** Where LLaVA-HR's checkpoint keeps its ConvNeXt. */
const CONVNEXT_PREFIX = 'model.vision_tower.slow_vision_tower.vision_tower';
/** Names the initialisation below in the lab's cache keys: change it when an init changes. */
export const LAB_INIT = 'hf-clip, he-convnext, layer-scale-1';

/** The config.json of a lab LLaVA-HR (towers described inline, as LLaVA-HR's test models are). */
export function labLlavaHrConfig(shape: LabLlavaHrShape): Record<string, unknown> {
  const { vit, convnext, llm } = shape;
  return {
    _name_or_path: 'egret-lab-mra',
    architectures: ['LlavaLlamaForCausalLM'],
    model_type: 'llava',
    bos_token_id: 1, eos_token_id: 2, pad_token_id: 0,
    hidden_act: 'silu', hidden_size: llm.width, intermediate_size: llm.intermediate,
    num_attention_heads: llm.heads, num_hidden_layers: llm.layers, num_key_value_heads: llm.heads,
    max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: false,
    initializer_range: STD, torch_dtype: 'float32', vocab_size: shape.vocab, use_cache: true,
    image_aspect_ratio: 'pad', input_image_size: shape.imageSize, is_multipath_encoder: true, freeze_vision: false,
    mm_hidden_size: vit.width, mm_projector_type: 'mlp2x_gelu', mm_use_im_patch_token: false, mm_use_im_start_end: false,
    mm_vision_select_feature: 'patch', mm_vision_select_layer: -2, use_mm_proj: true,
    mm_vision_tower: 'egret-lab/clip-vit', vision_tower_slow: 'egret-lab/convnext',
    mm_vision_tower_config: {
      model_type: 'clip_vision_model', hidden_size: vit.width, intermediate_size: 4 * vit.width, num_attention_heads: vit.heads,
      num_hidden_layers: vit.layers, image_size: vit.imageSize, patch_size: vit.patch, num_channels: 3, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
    },
    vision_tower_slow_config: { depths: convnext.depths, dims: convnext.dims, norm_eps: 1e-6, patch_size: 4, kernel_size: 7 },
  };
}

/** Adds fresh tensors to a spec map: normals of HF's initializer_range, norms at one, biases at zero. */
class Specs extends Map<string, TensorSpec> {
  normal(name: string, dims: number[], std = STD): void {
    this.set(name, { shape: dims, init: { normal: std } });
  }

  constant(name: string, dims: number[], value: number): void {
    this.set(name, { shape: dims, init: { constant: value } });
  }

  linear(name: string, out: number, inp: number, bias = true): void {
    this.normal(`${name}.weight`, [out, inp]);
    if (bias) this.constant(`${name}.bias`, [out], 0);
  }

  norm(name: string, width: number, bias = true): void {
    this.constant(`${name}.weight`, [width], 1);
    if (bias) this.constant(`${name}.bias`, [width], 0);
  }

  /** A LLaMA in HF names under `prefix` ('' or llava-hf's 'language_model.'). */
  llama(prefix: string, llm: LabShape['llm'], vocab: number): void {
    this.normal(`${prefix}model.embed_tokens.weight`, [vocab, llm.width]);
    for (let i = 0; i < llm.layers; i++) {
      const l = `${prefix}model.layers.${i}`;
      for (const p of ['q', 'k', 'v', 'o']) this.linear(`${l}.self_attn.${p}_proj`, llm.width, llm.width, false);
      this.linear(`${l}.mlp.gate_proj`, llm.intermediate, llm.width, false);
      this.linear(`${l}.mlp.up_proj`, llm.intermediate, llm.width, false);
      this.linear(`${l}.mlp.down_proj`, llm.width, llm.intermediate, false);
      this.norm(`${l}.input_layernorm`, llm.width, false);
      this.norm(`${l}.post_attention_layernorm`, llm.width, false);
    }
    this.norm(`${prefix}model.norm`, llm.width, false);
    this.linear(`${prefix}lm_head`, vocab, llm.width, false);
  }

  /**
   * An HF CLIPVisionModel's `vision_model` under `prefix`, initialised as CLIPPreTrainedModel._init_weights does
   * (initializer_factor 1): width^-0.5 for the class embedding and attention outputs, scaled by (2 layers)^-0.5 for
   * q, k, v and fc2, (2 width)^-0.5 for fc1.
   */
  clip(prefix: string, vit: LabShape['vit']): void {
    const grid = Math.floor(vit.imageSize / vit.patch);
    const width = vit.width ** -0.5;
    const inProj = width * (2 * vit.layers) ** -0.5;
    const bias = (name: string, n: number) => this.constant(`${name}.bias`, [n], 0);
    this.normal(`${prefix}.embeddings.class_embedding`, [vit.width], width);
    this.normal(`${prefix}.embeddings.patch_embedding.weight`, [vit.width, 3, vit.patch, vit.patch]);
    this.normal(`${prefix}.embeddings.position_embedding.weight`, [grid * grid + 1, vit.width]);
    this.norm(`${prefix}.pre_layrnorm`, vit.width);
    for (let i = 0; i < vit.layers; i++) {
      const l = `${prefix}.encoder.layers.${i}`;
      for (const p of ['q', 'k', 'v', 'out']) {
        this.normal(`${l}.self_attn.${p}_proj.weight`, [vit.width, vit.width], p === 'out' ? width : inProj);
        bias(`${l}.self_attn.${p}_proj`, vit.width);
      }
      this.norm(`${l}.layer_norm1`, vit.width);
      this.norm(`${l}.layer_norm2`, vit.width);
      this.normal(`${l}.mlp.fc1.weight`, [4 * vit.width, vit.width], (2 * vit.width) ** -0.5);
      bias(`${l}.mlp.fc1`, 4 * vit.width);
      this.normal(`${l}.mlp.fc2.weight`, [vit.width, 4 * vit.width], inProj);
      bias(`${l}.mlp.fc2`, vit.width);
    }
    this.norm(`${prefix}.post_layernorm`, vit.width);
  }

  /** N(0, 2 / fan-in) (He): a convolution or linear layer that keeps its input's scale through a GELU. */
  he(name: string, dims: number[]): void {
    this.set(name, { shape: dims, init: { normal: Math.sqrt(2 / dims.slice(1).reduce((a, b) => a * b, 1)) } });
  }

  /**
   * timm's ConvNeXt under `prefix` (no head: LLaVA-HR never reads it). Initialised for training from scratch in a
   * few thousand small steps, not as timm does for ImageNet's hundreds of epochs (trunc_normal 0.02, layer scale
   * 1e-6): with those, the lab's one-block stages pass a near-linear map of each 32-px patch for hundreds of steps
   * and nothing in the image is read; He normals and layer scale 1 make every block count from the first step.
   */
  convnext(prefix: string, convnext: LabLlavaHrShape['convnext']): void {
    const { dims, depths } = convnext;
    this.he(`${prefix}.stem.0.weight`, [dims[0]!, 3, 4, 4]);
    this.constant(`${prefix}.stem.0.bias`, [dims[0]!], 0);
    this.norm(`${prefix}.stem.1`, dims[0]!);
    dims.forEach((dim, s) => {
      const stage = `${prefix}.stages.${s}`;
      if (s > 0) {
        this.norm(`${stage}.downsample.0`, dims[s - 1]!);
        this.he(`${stage}.downsample.1.weight`, [dim, dims[s - 1]!, 2, 2]);
        this.constant(`${stage}.downsample.1.bias`, [dim], 0);
      }
      for (let j = 0; j < depths[s]!; j++) {
        const b = `${stage}.blocks.${j}`;
        this.he(`${b}.conv_dw.weight`, [dim, 1, 7, 7]);
        this.constant(`${b}.conv_dw.bias`, [dim], 0);
        this.norm(`${b}.norm`, dim);
        this.he(`${b}.mlp.fc1.weight`, [4 * dim, dim]);
        this.constant(`${b}.mlp.fc1.bias`, [4 * dim], 0);
        this.he(`${b}.mlp.fc2.weight`, [dim, 4 * dim]);
        this.constant(`${b}.mlp.fc2.bias`, [dim], 0);
        this.constant(`${b}.weight`, [dim], 1);
      }
    });
  }
}

/** Every tensor of a lab LLaVA-HR with its shape and initialisation, under the checkpoint's names. */
export function labLlavaHrTensors(shape: LabLlavaHrShape): Map<string, TensorSpec> {
  const specs = new Specs();
  const { vit, convnext, llm } = shape;
  specs.llama('', llm, shape.vocab);
  specs.clip('model.vision_tower.fast_vision_tower.vision_tower.vision_model', vit);
  specs.convnext(CONVNEXT_PREFIX, convnext);
  const high = convnext.dims.at(-1)!;
  for (let a = 0; a < 3; a++) {
    const m = `model.vision_tower.align_stages_latent.${a}`;
    specs.normal(`${m}.slow_conv.weight`, [high, high, 1, 1]);
    specs.constant(`${m}.slow_conv.bias`, [high], 0);
    specs.normal(`${m}.slow_proj.weight`, [vit.width, high, 1, 1]);
    specs.constant(`${m}.slow_proj.bias`, [vit.width], 0);
    specs.normal(`${m}.fast_conv.weight`, [vit.width, 1, 7, 7]);
    specs.constant(`${m}.fast_conv.bias`, [vit.width], 0);
    specs.normal(`${m}.fast_proj.weight`, [vit.width, vit.width, 1, 1]);
    specs.constant(`${m}.fast_proj.bias`, [vit.width], 0);
    specs.linear(`${m}.gate.0`, vit.width / 2, 2 * vit.width);
    specs.linear(`${m}.gate.2`, 1, vit.width / 2);
  }
  specs.linear('model.vision_tower.align_stages.0.fast_proj', vit.width, vit.width);
  specs.linear('model.vision_tower.align_stages.0.slow_proj', vit.width, high);
  specs.linear('model.mm_projector.0', llm.width, vit.width);
  specs.linear('model.mm_projector.2', llm.width, llm.width);
  return specs;
}

/** The config.json of a lab LLaVA-1.5 in llava-hf's layout: the CLIP ViT alone, its penultimate layer without CLS. */
export function labLlavaConfig(shape: LabShape): Record<string, unknown> {
  const { vit, llm } = shape;
  return {
    architectures: ['LlavaForConditionalGeneration'], model_type: 'llava',
    // llava-hf's <image> id; egret's prompts mark images with -200, so it only has to lie outside the vocabulary.
    image_token_index: shape.vocab, ignore_index: -100,
    projector_hidden_act: 'gelu', multimodal_projector_bias: true, vision_feature_layer: -2, vision_feature_select_strategy: 'default',
    image_aspect_ratio: 'pad', tie_word_embeddings: false, torch_dtype: 'float32',
    text_config: {
      model_type: 'llama', bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: llm.width, intermediate_size: llm.intermediate,
      num_attention_heads: llm.heads, num_hidden_layers: llm.layers, num_key_value_heads: llm.heads, max_position_embeddings: 16384,
      rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000, tie_word_embeddings: false, vocab_size: shape.vocab, initializer_range: STD,
    },
    vision_config: {
      model_type: 'clip_vision_model', hidden_size: vit.width, intermediate_size: 4 * vit.width, num_attention_heads: vit.heads,
      num_hidden_layers: vit.layers, image_size: vit.imageSize, patch_size: vit.patch, num_channels: 3, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
    },
  };
}

/** Every tensor of a lab LLaVA-1.5 (llava-hf names). */
export function labLlavaTensors(shape: LabShape): Map<string, TensorSpec> {
  const specs = new Specs();
  specs.llama('language_model.', shape.llm, shape.vocab);
  specs.clip('vision_tower.vision_model', shape.vit);
  specs.linear('multi_modal_projector.linear_1', shape.llm.width, shape.vit.width);
  specs.linear('multi_modal_projector.linear_2', shape.llm.width, shape.llm.width);
  return specs;
}

/** What training a lab vision-language model needs to know of it, whatever its family. */
export interface LabVisualModel {
  family: 'llava-hr' | 'llava';
  configJson: Record<string, unknown>;
  specs: Map<string, TensorSpec>;
  llm: LlamaConfig;
  /** The preprocessed image's side and its visual tokens. */
  size: number;
  visualTokens: number;
  /** The image as the family's loader prepares it, float32 [3, size, size]. */
  preprocess(image: RGBImage): Float32Array;
  /** The training forward; with `addedRows`, that graph input [batch, seq, hidden] is added to the decoder's input rows. */
  forward(source: TensorSource, addedRows?: string): VisualTrainingForward;
  /** The prefixes of the vision tower's and the projector's tensors: all but the decoder's. */
  visionPrefixes: string[];
  /** The high-resolution ConvNeXt of an MRA model: its config and the prefix of its tensors. */
  convnext?: { config: ConvNextConfig; prefix: string };
  /**
   * The MR-Adapters' output projections (`slow_proj`, `fast_proj`), which LLaVA-HR initialises at zero so that a
   * fresh adapter is the identity (research/mra-llava-hr.md §3).
   */
  adapterProjections?: string[];
}

export function labLlavaHrModel(shape: LabLlavaHrShape): LabVisualModel {
  const configJson = labLlavaHrConfig(shape);
  const config = llavaHrConfig(configJson, 'the lab LLaVA-HR');
  const specs = labLlavaHrTensors(shape);
  return {
    family: 'llava-hr', configJson, specs, llm: config.llm, size: config.inputImageSize, visualTokens: visualTokenCount(config),
    preprocess: (image) => preprocessLlavaHr(image, config.inputImageSize).pixelValues,
    forward: (source, addedRows) => buildLlavaHrTrainingForward(config, source, addedRows),
    visionPrefixes: ['model.vision_tower.', 'model.mm_projector.'],
    convnext: { config: config.convnext, prefix: CONVNEXT_PREFIX },
    adapterProjections: [...specs.keys()].filter((n) => /\.align_stages_latent\.\d+\.(slow|fast)_proj\.weight$/.test(n)),
  };
}

export function labLlavaModel(shape: LabShape): LabVisualModel {
  const configJson = labLlavaConfig(shape);
  const config = llavaConfigFromHf(configJson, 'the lab LLaVA-1.5');
  const size = config.vision.imageSize;
  return {
    family: 'llava', configJson, specs: labLlavaTensors(shape), llm: config.text, size, visualTokens: Math.floor(size / config.vision.patchSize) ** 2,
    preprocess: (image) => preprocessLlavaPad(image, size).pixelValues,
    forward: (source, addedRows) => buildLlavaTrainingForward(config, source, addedRows),
    visionPrefixes: ['vision_tower.', 'multi_modal_projector.'],
  };
}
