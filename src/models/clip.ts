/**
 * The CLIP vision transformer (a pre-LN ViT) as graph pieces: embeddings, pre-LayerNorm, one encoder layer (its
 * attention and MLP halves too), a run of layers, and the hidden state a model selects. Models that alter the
 * tower (LLaVA-HR resamples position embeddings and adds MR-adapter outputs between layers, LaVIN adapts the
 * attention input) compose these pieces. Two weight namings are understood: transformers' CLIPVisionModel and
 * OpenAI's CLIP state dict (clip/model.py VisionTransformer), whose attention keeps q, k, v in one packed matrix.
 */
import { InputError } from '../errors.js';
import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import type { WeightScope } from '../graph/weights.js';
import type { TensorSource } from '../io/checkpoint.js';
import { linear, type ComputeDtype } from './linear.js';

export type ClipActivation = 'quick_gelu' | 'gelu';

export interface ClipVisionConfig {
  hidden: number;
  layers: number;
  heads: number;
  patchSize: number;
  imageSize: number;
  layerNormEps: number;
  activation: ClipActivation;
}

/**
 * Where a tower's weights are, relative to its root scope. Norms and linears name a module whose `.weight` and
 * `.bias` are read; attention is either three projections or OpenAI's packed nn.MultiheadAttention in_proj.
 */
export interface ClipNaming {
  classEmbedding: string;
  patchEmbedding: string;
  positionEmbedding: string;
  preLayerNorm: string;
  layer(i: number): string;
  norm1: string;
  norm2: string;
  qkv: { q: string; k: string; v: string } | { packedWeight: string; packedBias: string };
  out: string;
  fc1: string;
  fc2: string;
}

/** transformers CLIPVisionTransformer (root: `vision_model`), modeling_clip.py. */
export const HF_CLIP_NAMING: ClipNaming = {
  classEmbedding: 'embeddings.class_embedding',
  patchEmbedding: 'embeddings.patch_embedding.weight',
  positionEmbedding: 'embeddings.position_embedding.weight',
  preLayerNorm: 'pre_layrnorm', // sic
  layer: (i) => `encoder.layers.${i}`,
  norm1: 'layer_norm1',
  norm2: 'layer_norm2',
  qkv: { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj' },
  out: 'self_attn.out_proj',
  fc1: 'mlp.fc1',
  fc2: 'mlp.fc2',
};

/** OpenAI clip/model.py VisionTransformer (root: `visual`). */
export const OPENAI_CLIP_NAMING: ClipNaming = {
  classEmbedding: 'class_embedding',
  patchEmbedding: 'conv1.weight',
  positionEmbedding: 'positional_embedding',
  preLayerNorm: 'ln_pre',
  layer: (i) => `transformer.resblocks.${i}`,
  norm1: 'ln_1',
  norm2: 'ln_2',
  qkv: { packedWeight: 'attn.in_proj_weight', packedBias: 'attn.in_proj_bias' },
  out: 'attn.out_proj',
  fc1: 'mlp.c_fc',
  fc2: 'mlp.c_proj',
};

/** A tower in a graph: its geometry, the scope of its root module, its naming, and how its linears compute. */
export interface ClipTower {
  config: ClipVisionConfig;
  scope: WeightScope;
  naming: ClipNaming;
  dtype: ComputeDtype;
}

type Json = Record<string, unknown>;

/** transformers' CLIPVisionConfig (a llava-hf `vision_config`); defaults are CLIPVisionConfig's own. */
export function clipVisionConfigFromHf(cfg: Json, where: string): ClipVisionConfig {
  const num = (key: string, fallback?: number): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InputError(`${where}: '${key}' must be a positive integer`);
    return v;
  };
  const eps = cfg['layer_norm_eps'] ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0)) throw new InputError(`${where}: 'layer_norm_eps' must be a positive number`);
  const config = {
    hidden: num('hidden_size', 768),
    layers: num('num_hidden_layers', 12),
    heads: num('num_attention_heads', 12),
    patchSize: num('patch_size', 32),
    imageSize: num('image_size', 224),
    layerNormEps: eps,
    activation: clipActivation(cfg['hidden_act'] ?? 'quick_gelu', where),
  };
  return checkGeometry(config, where);
}

/**
 * An OpenAI CLIP state dict's tower geometry, read from its tensors under `prefix` (e.g. 'visual.'). The head
 * count is not recorded there: clip/model.py build_model derives width // 64, which callers pass unless a config
 * says otherwise. OpenAI's towers use QuickGELU and LayerNorm eps 1e-5.
 */
export function clipVisionConfigFromOpenAi(source: TensorSource, prefix: string, heads: number, where: string): ClipVisionConfig {
  const need = (name: string) => {
    if (!source.has(prefix + name)) throw new InputError(`${where}: no tensor '${prefix + name}' (not an OpenAI CLIP visual tower)`);
    return source.info(prefix + name).shape;
  };
  const [hidden, , patchSize] = need('conv1.weight') as [number, number, number];
  const [positions] = need('positional_embedding') as [number];
  let layers = 0;
  while (source.has(`${prefix}transformer.resblocks.${layers}.ln_1.weight`)) layers++;
  const grid = Math.round(Math.sqrt(positions - 1));
  if (grid * grid !== positions - 1) throw new InputError(`${where}: ${positions} position embeddings are not 1 + a square grid`);
  return checkGeometry({ hidden, layers, heads, patchSize, imageSize: grid * patchSize, layerNormEps: 1e-5, activation: 'quick_gelu' }, where);
}

function clipActivation(name: unknown, where: string): ClipActivation {
  if (name === 'quick_gelu' || name === 'gelu') return name;
  throw new InputError(`${where}: hidden_act '${String(name)}' is not supported (quick_gelu or gelu)`);
}

function checkGeometry(config: ClipVisionConfig, where: string): ClipVisionConfig {
  if (config.layers < 1) throw new InputError(`${where}: the vision tower has no layers`);
  if (!(config.heads >= 1) || config.hidden % config.heads !== 0) {
    throw new InputError(`${where}: width ${config.hidden} does not split into ${config.heads} attention heads`);
  }
  if (config.imageSize % config.patchSize !== 0) throw new InputError(`${where}: image size ${config.imageSize} is not a multiple of patch ${config.patchSize}`);
  return config;
}

/** Patch tokens of pixels [batch, 3, H, W]: the stride-patch convolution (no bias), raster order → [batch, (H/p)·(W/p), width]. */
export function clipPatchTokens(t: ClipTower, pixels: Value): Value {
  const p = t.config.patchSize;
  const map = op.conv(pixels, t.scope.weight(t.naming.patchEmbedding), null, { strides: [p, p] });
  return op.transpose(op.reshape(map, [0, 0, -1]), [0, 2, 1]);
}

/** The learned position table [1 + grid², width] (row 0 is the class token's). */
export function clipPositionTable(t: ClipTower): Value {
  return t.scope.weight(t.naming.positionEmbedding);
}

/**
 * [class embedding; patch tokens] + position table → [batch, 1 + patches, width], before the pre-LayerNorm.
 * `positions` defaults to the stored table; a tower run at another input size passes a resampled one.
 */
export function clipEmbeddings(t: ClipTower, pixels: Value, positions: Value = clipPositionTable(t)): Value {
  const patches = clipPatchTokens(t, pixels);
  const cls = op.reshape(t.scope.weight(t.naming.classEmbedding), [1, 1, t.config.hidden]);
  const tokens = op.concat([op.expandLike(cls, op.slice(patches, [1], [0], [1])), patches], 1);
  return op.add(tokens, positions);
}

export function clipPreLayerNorm(t: ClipTower, x: Value): Value {
  return clipLayerNorm(t, t.naming.preLayerNorm, x);
}

/** Multi-head self-attention of layer `i` over all tokens, no mask; q is scaled before q·kᵀ as both CLIPs do. */
export function clipSelfAttention(t: ClipTower, i: number, x: Value): Value {
  const { hidden, heads } = t.config;
  const layer = t.scope.at(t.naming.layer(i));
  const { qkv } = t.naming;
  const [q, k, v] = ('packedWeight' in qkv
    ? op.split(linear(layer, qkv.packedWeight, x, t.dtype, qkv.packedBias), [hidden, hidden, hidden], -1)
    : [qkv.q, qkv.k, qkv.v].map((m) => linear(layer, `${m}.weight`, x, t.dtype, `${m}.bias`))) as [Value, Value, Value];
  const headDim = hidden / heads;
  const split = (y: Value) => op.transpose(op.reshape(y, [0, 0, heads, headDim]), [0, 2, 1, 3]);
  const o = op.attention(split(op.mul(q, 1 / Math.sqrt(headDim))), split(k), split(v), { scale: 1 });
  return linear(layer, `${t.naming.out}.weight`, op.reshape(op.transpose(o, [0, 2, 1, 3]), [0, 0, hidden]), t.dtype, `${t.naming.out}.bias`);
}

/** fc2(act(fc1(x))) of layer `i`. */
export function clipMlp(t: ClipTower, i: number, x: Value): Value {
  const layer = t.scope.at(t.naming.layer(i));
  const { fc1, fc2 } = t.naming;
  const h = linear(layer, `${fc1}.weight`, x, t.dtype, `${fc1}.bias`);
  const act = t.config.activation === 'quick_gelu' ? op.quickGelu(h) : op.gelu(h);
  return linear(layer, `${fc2}.weight`, act, t.dtype, `${fc2}.bias`);
}

/** One pre-LN encoder layer: x + attn(norm1(x)), then + mlp(norm2(·)). */
export function clipEncoderLayer(t: ClipTower, i: number, x: Value): Value {
  const layer = t.naming.layer(i);
  const h = op.add(x, clipSelfAttention(t, i, clipLayerNorm(t, `${layer}.${t.naming.norm1}`, x)));
  return op.add(h, clipMlp(t, i, clipLayerNorm(t, `${layer}.${t.naming.norm2}`, h)));
}

/** Encoder layers [from, to) applied in turn. */
export function clipEncoder(t: ClipTower, x: Value, from: number, to: number): Value {
  for (let i = from; i < to; i++) x = clipEncoderLayer(t, i, x);
  return x;
}

/**
 * transformers' `hidden_states[layer]` for pixels [batch, 3, S, S] → [batch, 1 + patches, width]: index 0 is the
 * embeddings after the pre-LayerNorm, index i the output of encoder layer i (1-based); negative indices count
 * from the end (LLaVA's vision_feature_layer -2 = the output of layer L-1; later layers are not built).
 * post_layernorm is never applied: LLaVA and LaVIN both read the raw residual stream.
 */
export function clipHiddenState(t: ClipTower, pixels: Value, layer: number): Value {
  const { layers } = t.config;
  const index = layer < 0 ? layers + 1 + layer : layer;
  if (!Number.isInteger(index) || index < 0 || index > layers) {
    throw new InputError(`vision feature layer ${layer} is outside the tower's hidden states (-${layers + 1}..${layers})`);
  }
  return clipEncoder(t, clipPreLayerNorm(t, clipEmbeddings(t, pixels)), 0, index);
}

/** The patch tokens alone ([batch, 1 + patches, width] → [batch, patches, width]). */
export function dropClassToken(x: Value): Value {
  return op.slice(x, [1], [1], [undefined]);
}

/**
 * The tower's LayerNorm `module` (relative to its root, e.g. `${naming.layer(i)}.${naming.norm1}`): a model that
 * changes a layer's inside (LaVIN adapts the attention input) composes it with clipSelfAttention and clipMlp.
 */
export function clipLayerNorm(t: ClipTower, module: string, x: Value): Value {
  return op.layerNorm(x, t.scope.weight(`${module}.weight`), t.scope.weight(`${module}.bias`), t.config.layerNormEps);
}
