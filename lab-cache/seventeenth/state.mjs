// A stage-0 training state's ConvNeXt and last-stage reading head (checkpoint layout), for the scripts here and in
// ../sixteenth. Read at the state's own step (its metadata), so that the state is only read: pretrainConvnext at a
// later step would train on and save over it.
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
import { pretrainConvnext } from '../../dist/src/lab/pretrain-convnext.js';
import { openCheckpointFile } from '../../dist/src/io/checkpoint.js';
import { readingHeadSpecs } from '../../dist/src/lab/reading.js';
import { freshTensors } from '../../dist/src/train/scratch.js';

/** The step a training state was saved at. */
export async function stateStep(statePath) {
  const state = await openCheckpointFile(statePath);
  try {
    return Number(state.metadata.egret_trainer_step);
  } finally {
    await state.close();
  }
}

export async function stageZeroWeights(model, statePath) {
  const steps = await stateStep(statePath);
  const specs = new Map([...model.specs, ...readingHeadSpecs(model.convnext.config.dims.at(-1))]);
  const { source } = await pretrainConvnext(model, freshTensors(specs, 0), { ...FULL_PLAN.mra.train.pretrain, steps, sheets: 1, seed: 0, threads: 2, statePath, keepReadingHead: true });
  return source;
}
