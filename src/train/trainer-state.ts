/**
 * A Trainer's state on disk, so that hours of training survive an interrupted run: one safetensors file with every
 * trainable tensor (under its name), its Adam moments (adam_m.NAME, adam_v.NAME) and the update count in the
 * metadata, with the seconds trained over all runs. Written under a temporary name and renamed (writeSafetensors),
 * so a kill mid-write leaves the previous state whole.
 */
import { stat } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { openCheckpointFile } from '../io/checkpoint.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-write.js';
import { SafetensorsFile } from '../io/safetensors.js';
import type { Trainer, TrainerState } from './trainer.js';

const STEP = 'egret_trainer_step';
const SECONDS = 'egret_seconds';

/** A run of `steps` updates that goes on from its saved state, if any. */
export interface ResumableRun {
  /** The update to start from: the saved one, else 0. */
  start: number;
  /** Seconds trained so far, the earlier runs' included. */
  seconds(): number;
  /** Saves the trainer's state (and the seconds) at `path`. */
  save(): Promise<void>;
}

/**
 * Restores the state at `path` (when there is one) into `trainer` and returns where the run starts; `secondsBefore`
 * counts time spent before this training started (an earlier stage) when no state is found.
 */
export async function resumeTraining(path: string, trainer: Trainer, steps: number, secondsBefore = 0): Promise<ResumableRun> {
  const began = performance.now();
  const saved = await restoreTrainerState(path, trainer);
  if (saved && saved.step > steps) throw new Error(`${path}: the saved state is at step ${saved.step}, past the ${steps} steps asked`);
  const before = saved ? Number(saved.metadata[SECONDS] ?? 0) : secondsBefore;
  const seconds = () => before + (performance.now() - began) / 1000;
  return { start: saved?.step ?? 0, seconds, save: () => saveTrainerState(path, trainer, { [SECONDS]: String(seconds()) }) };
}

async function saveTrainerState(path: string, trainer: Trainer, metadata: Record<string, string> = {}): Promise<void> {
  const state = trainer.state();
  const tensors: Record<string, TensorToWrite> = {};
  for (const t of trainer.tensors) {
    const put = (name: string, values: Float32Array | Float64Array | undefined) => {
      if (values) tensors[name] = { dtype: values instanceof Float64Array ? 'F64' : 'F32', shape: t.shape, data: values };
    };
    put(t.name, state.params.get(t.name));
    put(`adam_m.${t.name}`, state.m.get(t.name));
    put(`adam_v.${t.name}`, state.v.get(t.name));
  }
  await writeSafetensors(path, tensors, { ...metadata, [STEP]: String(state.step) });
}

/**
 * Restores the state saved at `path` into `trainer` and returns its update count and metadata; undefined when
 * there is no file.
 * A state that does not fit the trainer's tensors is refused, not half-loaded.
 */
async function restoreTrainerState(path: string, trainer: Trainer): Promise<{ step: number; metadata: Record<string, string> } | undefined> {
  if (!(await stat(path).catch(() => undefined))) return undefined;
  const source = await openCheckpointFile(path);
  try {
    const step = source instanceof SafetensorsFile ? Number(source.metadata[STEP]) : NaN;
    if (!Number.isInteger(step) || step < 0) throw new InputError(`${path}: not a trainer state (no ${STEP} in its metadata)`);
    const current = trainer.state();
    const state: TrainerState = { step, params: new Map(), m: new Map(), v: new Map() };
    const read = async (name: string, like: Float32Array | Float64Array) => {
      if (!source.has(name)) throw new InputError(`${path}: no '${name}'; the state is of another training run`);
      const wanted = like instanceof Float64Array ? 'F64' : 'F32';
      const { dtype } = source.info(name);
      const bytes = await source.read(name);
      if (dtype !== wanted || bytes.byteLength !== like.byteLength) {
        throw new InputError(`${path}: '${name}' is ${bytes.byteLength} bytes of ${dtype}, the training holds ${like.byteLength} of ${wanted}`);
      }
      const copy = new Uint8Array(bytes); // aligned for the typed array
      return like instanceof Float64Array ? new Float64Array(copy.buffer) : new Float32Array(copy.buffer);
    };
    for (const [name, values] of current.params) state.params.set(name, await read(name, values));
    for (const [name, values] of current.m) state.m.set(name, await read(`adam_m.${name}`, values));
    for (const [name, values] of current.v) state.v.set(name, await read(`adam_v.${name}`, values));
    trainer.setState(state);
    return { step, metadata: (source as SafetensorsFile).metadata };
  } finally {
    await source.close();
  }
}
