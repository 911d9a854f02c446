/**
 * A LaVIN checkpoint's settings: what util/misc.py save_model stores — `{'model': {'module.' + name: tensor},
 * 'optimizer', 'epoch', 'scaler', 'args'}` — read without executing anything (argparse.Namespace is an inert record
 * to the unpickler). The adapters' widths come from the tensors; what no tensor records (router temperature, scale,
 * the number of visual tokens) from the saved `args`.
 */
import { InputError } from '../../errors.js';
import type { TensorSource } from '../../io/checkpoint.js';
import { PyDict, PyObject, type PyValue } from '../../io/pickle.js';
import { PytorchFile } from '../../io/pytorch.js';
import type { AdapterShape } from './adapter.js';

export interface LavinSettings {
  /** Prefix of the adapter tensors' names in the file ('model.module.' in the official checkpoints). */
  prefix: string;
  /** The MM-Adapter in every LLaMA block (lavin/mm_adaptation.py, adapter_type 'attn'). */
  llm: AdapterShape;
  /** The router adapter in every CLIP block (visual_adapter_type 'router'); same hidden size and temperature. */
  clip: AdapterShape;
  /** Visual tokens per image (args.n_prompt): CLIP's class token after every (blocks / n_prompt)-th block. */
  visualTokens: number;
  /** Hidden width of the projector adapter_proj (args.hidden_proj). */
  projectorHidden: number;
}

const MODALITY = 'adapter_modality_embedding.weight';

/** Module names of LaVIN's adapters in its state dict (lavin/mm_adaptation.py), without `module.` or any prefix. */
export const LAVIN_MODULES = {
  llm: (layer: number) => `layers.${layer}.adapter_attn`,
  clip: (block: number) => `backbone.visual.transformer.resblocks.${block}.adapter_attn`,
} as const;
const PREFIXES = ['model.module.', 'model.', 'module.', ''];

/** The saved argparse Namespace's fields, if the file has one. */
function savedArgs(source: TensorSource): ReadonlyMap<PyValue, PyValue> | undefined {
  if (!(source instanceof PytorchFile) || !(source.root instanceof PyDict)) return undefined;
  const args = source.root.entries.get('args');
  if (args instanceof PyObject && args.state instanceof PyDict) return args.state.entries;
  if (args instanceof PyDict) return args.entries;
  return undefined;
}

/**
 * The settings of the LaVIN checkpoint `source` (file `where`) for a LLaMA of width `llmWidth` and a CLIP tower of
 * width `clipWidth` with `clipLayers` blocks. A missing or contradictory setting is an InputError naming the field or
 * tensor. `args` defaults to the checkpoint's saved ones (a fresh start passes its own).
 */
export function lavinSettings(source: TensorSource, where: string, dims: { llmWidth: number; clipWidth: number; clipLayers: number },
                              args: ReadonlyMap<PyValue, PyValue> | undefined = savedArgs(source)): LavinSettings {
  const prefix = PREFIXES.find((p) => source.has(p + MODALITY));
  if (prefix === undefined) throw new InputError(`${where}: no tensor '${MODALITY}' (with or without 'model.module.'): not a LaVIN checkpoint`);
  if (!args) throw new InputError(`${where}: no saved 'args' (LaVIN's checkpoints record the router temperature and adapter settings there)`);
  const arg = (key: string): PyValue | undefined => args.get(key);
  const number = (key: string, check: (v: number) => boolean, rule: string): number => {
    const v = arg(key);
    if (v === undefined) throw new InputError(`${where}: the checkpoint's saved args have no '${key}' (needed: ${rule})`);
    if (typeof v !== 'number' || !check(v)) throw new InputError(`${where}: args.${key} = ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)} is not ${rule}`);
    return v;
  };
  for (const [key, official] of [['adapter_type', 'attn'], ['visual_adapter_type', 'router']] as const) {
    const v = arg(key);
    if (v !== undefined && v !== official) throw new InputError(`${where}: args.${key} '${String(v)}' is not supported ('${official}', as every official script sets it)`);
  }

  const shapeOf = (name: string): number[] => {
    if (!source.has(prefix + name)) throw new InputError(`${where}: no tensor '${prefix + name}'`);
    return source.info(prefix + name).shape;
  };
  const modality = shapeOf(MODALITY);
  if (modality.join(',') !== `2,${dims.llmWidth}`) throw new InputError(`${where}: '${prefix + MODALITY}' is [${modality}], expected [2,${dims.llmWidth}] for the LLaMA's width ${dims.llmWidth}`);
  const first = LAVIN_MODULES.llm(0);
  const [hidden] = shapeOf(`${first}.conv_A.weight`) as [number];
  const [, perGroup] = shapeOf(`${first}.conv_B.weight`) as [number, number];
  const [projectorHidden] = shapeOf('adapter_proj.conv_A.weight') as [number];
  const agree = (key: string, fromTensors: number, tensor: string) => {
    const v = arg(key);
    if (v !== undefined && v !== fromTensors) throw new InputError(`${where}: args.${key} = ${String(v)} contradicts '${prefix + tensor}' (${fromTensors})`);
  };
  agree('adapter_dim', hidden, `${first}.conv_A.weight`);
  agree('hidden_proj', projectorHidden, 'adapter_proj.conv_A.weight');
  if (!(perGroup > 0) || hidden % perGroup !== 0) throw new InputError(`${where}: '${prefix}${first}.conv_B.weight' reads ${perGroup} of ${hidden} hidden units per group`);
  const temperature = number('temperature', (v) => v > 0, 'a positive router temperature');
  const scale = number('adapter_scale', Number.isFinite, 'a finite adapter scale');
  const visualTokens = number('n_prompt', (v) => Number.isInteger(v) && v > 0 && dims.clipLayers % v === 0,
    `a positive divisor of the CLIP tower's ${dims.clipLayers} blocks (one class token after every blocks/n_prompt-th block)`);
  const shape = { hidden, groups: hidden / perGroup, scale, temperature };
  return { prefix, llm: { ...shape, width: dims.llmWidth }, clip: { ...shape, width: dims.clipWidth }, visualTokens, projectorHidden };
}
