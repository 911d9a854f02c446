/**
 * LaVIN's adapters as training starts them (lavin/mm_adapter.py RepAdapter_Router, lavin/mm_adaptation.py,
 * lavin/model.py): down-projections xavier-uniform with zero bias, both up-projections zero (each adapter starts as
 * the identity), routers with nn.Linear's default init (kaiming-uniform a = √5: U(±1/√fan_in), bias the same), the
 * projector's two Linears xavier-uniform with zero biases, the modality embedding N(0, 1). From a seeded generator:
 * the same seed gives the same adapters (not torch's numbers).
 */
import { MemorySource } from '../io/memory-source.js';
import { seededRandom } from '../generate/sampling.js';
import { LAVIN_MODULES } from '../models/lavin/settings.js';

export interface LavinInitShape {
  llmWidth: number;
  llmLayers: number;
  clipWidth: number;
  clipLayers: number;
  /** adapter_dim (8) and its 2 groups. */
  hidden: number;
  groups: number;
  /** hidden_proj (128). */
  projectorHidden: number;
}

/** Fresh adapters under LaVIN's names with the `module.` prefix its checkpoints carry. */
export function initialLavinAdapters(shape: LavinInitShape, seed: number): MemorySource {
  const random = seededRandom(seed);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * random() - 1) * bound);
  const normal = (n: number) => Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  const put = (name: string, dims: number[], data?: Float32Array) => {
    tensors[`module.${name}`] = { shape: dims, data: data ?? new Float32Array(dims.reduce((a, b) => a * b, 1)) };
  };
  // xavier_uniform_: U(±√(6 / (fan_in + fan_out))), fans counting the kernel (1 for the Conv1d).
  const xavier = (out: number, inp: number) => uniform(out * inp, Math.sqrt(6 / (out + inp)));
  const adapter = (prefix: string, c: number) => {
    put(`${prefix}.conv_A.weight`, [shape.hidden, c, 1], xavier(shape.hidden, c));
    put(`${prefix}.conv_A.bias`, [shape.hidden]);
    for (const up of ['conv_B', 'conv_D']) {
      put(`${prefix}.${up}.weight`, [c, shape.hidden / shape.groups, 1]);
      put(`${prefix}.${up}.bias`, [c]);
    }
    put(`${prefix}.expert_weights.weight`, [2, c], uniform(2 * c, 1 / Math.sqrt(c)));
    put(`${prefix}.expert_weights.bias`, [2], uniform(2, 1 / Math.sqrt(c)));
  };
  for (let i = 0; i < shape.llmLayers; i++) adapter(LAVIN_MODULES.llm(i), shape.llmWidth);
  for (let i = 0; i < shape.clipLayers; i++) adapter(LAVIN_MODULES.clip(i), shape.clipWidth);
  put('adapter_proj.conv_A.weight', [shape.projectorHidden, shape.clipWidth], xavier(shape.projectorHidden, shape.clipWidth));
  put('adapter_proj.conv_A.bias', [shape.projectorHidden]);
  put('adapter_proj.conv_B.weight', [shape.llmWidth, shape.projectorHidden], xavier(shape.llmWidth, shape.projectorHidden));
  put('adapter_proj.conv_B.bias', [shape.llmWidth]);
  put('adapter_modality_embedding.weight', [2, shape.llmWidth], normal(2 * shape.llmWidth));
  return new MemorySource(tensors);
}
