// Stage 1 alone on a stage-0 state's ConvNeXt, for its held-out check line. env: STATE (stage 0's state file), S1TASKS, S1WORDS, APART=1 (vectorsApart), S1STEPS;
// DIMS, DEPTHS, VIT_WIDTH for a shape other than the plan's (../seventeenth/shape.mjs).
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
import { shape } from '../seventeenth/shape.mjs';
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { pretrainConvnext } from '../../dist/src/lab/pretrain-convnext.js';
import { stateStep } from '../seventeenth/state.mjs';
import { pretrainTokenPath } from '../../dist/src/lab/pretrain-tokens.js';
import { readingHeadSpecs } from '../../dist/src/lab/reading.js';
import { freshTensors } from '../../dist/src/train/scratch.js';
const env = process.env;
const t = (m) => console.log(new Date().toISOString().slice(11, 19), m);
const model = labLlavaHrModel(shape);
const specs = new Map([...model.specs, ...readingHeadSpecs(model.llm.hidden)]);
const steps = await stateStep(env.STATE);
const { source } = await pretrainConvnext(model, freshTensors(specs, 0), { ...FULL_PLAN.mra.train.pretrain, steps, sheets: 1, seed: 0, threads: 2, statePath: env.STATE });
await pretrainTokenPath(model, source, {
  sheets: 64, codes: 150, words: Number(env.S1WORDS ?? 150), blanks: 1, check: 100, steps: Number(env.S1STEPS ?? 1500), batch: 8, lr: 2e-3, warmup: 50, vectors: 0.5,
  tasks: Number(env.S1TASKS ?? 200), vectorsApart: env.APART === '1', seed: 0, rms: 0.5, threads: 2, log: t,
  onStep: (r) => { if (r.step % 250 === 0) t(`stage 1 step ${r.step} reading ${r.reading.toFixed(3)} acc ${(100 * r.accuracy).toFixed(1)} vectors ${r.vectors?.toFixed(3)}`); },
});
