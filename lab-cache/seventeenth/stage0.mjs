// Stage 0 from scratch on a ConvNeXt of its own shape: env OUT, DIMS and DEPTHS (comma lists; absent: the plan's),
// STEPS, LR, WORDS, BLANK=1, TASKS=crops,images, EVERY (renderEvery), SMALL (smallCaps), STOP (end once the state at that step is
// saved), CHECK.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { shape } from './shape.mjs';
import { pretrainConvnext } from '../../dist/src/lab/pretrain-convnext.js';
import { freshTensors } from '../../dist/src/train/scratch.js';
const env = process.env;
const out = env.OUT;
await mkdir(out, { recursive: true });
const list = (v) => v.split(',').map(Number);
console.log('convnext', JSON.stringify(shape.convnext));
const model = labLlavaHrModel(shape);
const pre = FULL_PLAN.mra.train.pretrain;
const t0 = Date.now();
const { ceiling } = await pretrainConvnext(model, freshTensors(model.specs, 0), {
  ...pre, steps: Number(env.STEPS ?? pre.steps), lr: Number(env.LR ?? pre.lr), words: Number(env.WORDS ?? 0), blankWords: env.BLANK === '1',
  renderEvery: Number(env.EVERY ?? 1), ...(env.SMALL ? { smallCaps: Number(env.SMALL) } : {}), ...(env.TASKS ? { tasks: { crops: list(env.TASKS)[0], images: list(env.TASKS)[1] } } : {}),
  seed: 0, threads: 2, statePath: join(out, 'stage0.safetensors'), saveEvery: 50, check: { seed: 1_000_000, count: Number(env.CHECK ?? 50) },
  log: (m) => console.log(new Date().toISOString().slice(11, 19), m),
  onStep: (r) => { if (env.STOP && r.step > Number(env.STOP)) process.exit(0); if (r.step % 10 === 0) console.log(`step ${r.step} loss ${r.loss.toFixed(3)} acc ${(100 * r.accuracy).toFixed(1)} glyphs ${(100 * r.glyphs).toFixed(1)} lr ${r.lr.toExponential(2)} ${r.seconds.toFixed(2)} s`); },
});
console.log('ceiling', JSON.stringify(ceiling));
console.log('done in', ((Date.now() - t0) / 1000).toFixed(0), 's');
