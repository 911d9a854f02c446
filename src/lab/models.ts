/**
 * The lab's tiny models, described as the official code would save them: a LLaVA-HR in its original layout
 * (config.json with `is_multipath_encoder`, LlavaLlamaForCausalLM names), so that everything egret does to a
 * released LLaVA-HR runs on them unchanged. A model is its config; its tensors' names and shapes follow from it,
 * with the initialisation the official code gives each (HF `initializer_range` normals, norms at one, biases at
 * zero, timm's ConvNeXt layer scale at 1e-6).
 */
import type { TensorSpec } from '../train/scratch.js';

export interface LabLlavaHrShape {
  /** input_image_size: the ConvNeXt's side. */
  imageSize: number;
  vit: { width: number; layers: number; heads: number; patch: number; imageSize: number };
  convnext: { depths: number[]; dims: number[] };
  llm: { width: number; layers: number; heads: number; intermediate: number };
  vocab: number;
}

const STD = 0.02;

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

/** Every tensor of a lab LLaVA-HR with its shape and initialisation, under the checkpoint's names. */
export function labLlavaHrTensors(shape: LabLlavaHrShape): Map<string, TensorSpec> {
  const specs = new Map<string, TensorSpec>();
  const normal = (name: string, dims: number[]) => specs.set(name, { shape: dims, init: { normal: STD } });
  const constant = (name: string, dims: number[], value: number) => specs.set(name, { shape: dims, init: { constant: value } });
  const linear = (name: string, out: number, inp: number, bias = true) => {
    normal(`${name}.weight`, [out, inp]);
    if (bias) constant(`${name}.bias`, [out], 0);
  };
  const norm = (name: string, width: number, bias = true) => {
    constant(`${name}.weight`, [width], 1);
    if (bias) constant(`${name}.bias`, [width], 0);
  };
  const { vit, convnext, llm } = shape;

  normal('model.embed_tokens.weight', [shape.vocab, llm.width]);
  for (let i = 0; i < llm.layers; i++) {
    const l = `model.layers.${i}`;
    for (const p of ['q', 'k', 'v', 'o']) linear(`${l}.self_attn.${p}_proj`, llm.width, llm.width, false);
    linear(`${l}.mlp.gate_proj`, llm.intermediate, llm.width, false);
    linear(`${l}.mlp.up_proj`, llm.intermediate, llm.width, false);
    linear(`${l}.mlp.down_proj`, llm.width, llm.intermediate, false);
    norm(`${l}.input_layernorm`, llm.width, false);
    norm(`${l}.post_attention_layernorm`, llm.width, false);
  }
  norm('model.norm', llm.width, false);
  linear('lm_head', shape.vocab, llm.width, false);

  const clip = 'model.vision_tower.fast_vision_tower.vision_tower.vision_model';
  const grid = Math.floor(vit.imageSize / vit.patch);
  normal(`${clip}.embeddings.class_embedding`, [vit.width]);
  normal(`${clip}.embeddings.patch_embedding.weight`, [vit.width, 3, vit.patch, vit.patch]);
  normal(`${clip}.embeddings.position_embedding.weight`, [grid * grid + 1, vit.width]);
  norm(`${clip}.pre_layrnorm`, vit.width);
  for (let i = 0; i < vit.layers; i++) {
    const l = `${clip}.encoder.layers.${i}`;
    for (const p of ['q', 'k', 'v', 'out']) linear(`${l}.self_attn.${p}_proj`, vit.width, vit.width);
    norm(`${l}.layer_norm1`, vit.width);
    norm(`${l}.layer_norm2`, vit.width);
    linear(`${l}.mlp.fc1`, 4 * vit.width, vit.width);
    linear(`${l}.mlp.fc2`, vit.width, 4 * vit.width);
  }
  norm(`${clip}.post_layernorm`, vit.width);

  const cnx = 'model.vision_tower.slow_vision_tower.vision_tower';
  normal(`${cnx}.stem.0.weight`, [convnext.dims[0]!, 3, 4, 4]);
  constant(`${cnx}.stem.0.bias`, [convnext.dims[0]!], 0);
  norm(`${cnx}.stem.1`, convnext.dims[0]!);
  convnext.dims.forEach((dim, s) => {
    const stage = `${cnx}.stages.${s}`;
    if (s > 0) {
      norm(`${stage}.downsample.0`, convnext.dims[s - 1]!);
      normal(`${stage}.downsample.1.weight`, [dim, convnext.dims[s - 1]!, 2, 2]);
      constant(`${stage}.downsample.1.bias`, [dim], 0);
    }
    for (let j = 0; j < convnext.depths[s]!; j++) {
      const b = `${stage}.blocks.${j}`;
      normal(`${b}.conv_dw.weight`, [dim, 1, 7, 7]);
      constant(`${b}.conv_dw.bias`, [dim], 0);
      norm(`${b}.norm`, dim);
      linear(`${b}.mlp.fc1`, 4 * dim, dim);
      linear(`${b}.mlp.fc2`, dim, 4 * dim);
      // timm's ls_init_value: the residual branch starts small.
      constant(`${b}.weight`, [dim], 1e-6);
    }
  });

  const high = convnext.dims.at(-1)!;
  for (let a = 0; a < 3; a++) {
    const m = `model.vision_tower.align_stages_latent.${a}`;
    normal(`${m}.slow_conv.weight`, [high, high, 1, 1]);
    constant(`${m}.slow_conv.bias`, [high], 0);
    normal(`${m}.slow_proj.weight`, [vit.width, high, 1, 1]);
    constant(`${m}.slow_proj.bias`, [vit.width], 0);
    normal(`${m}.fast_conv.weight`, [vit.width, 1, 7, 7]);
    constant(`${m}.fast_conv.bias`, [vit.width], 0);
    normal(`${m}.fast_proj.weight`, [vit.width, vit.width, 1, 1]);
    constant(`${m}.fast_proj.bias`, [vit.width], 0);
    linear(`${m}.gate.0`, vit.width / 2, 2 * vit.width);
    linear(`${m}.gate.2`, 1, vit.width / 2);
  }
  linear('model.vision_tower.align_stages.0.fast_proj', vit.width, vit.width);
  linear('model.vision_tower.align_stages.0.slow_proj', vit.width, high);
  linear('model.mm_projector.0', llm.width, vit.width);
  linear('model.mm_projector.2', llm.width, llm.width);
  return specs;
}
