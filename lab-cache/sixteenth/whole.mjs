// Stages 1, 2 and the whole model (vision frozen) from a continued stage 0's state. env: OUT, STAGE0 (state file),
// STEPS0, LR0, WORDS0, TASKS0 (stage 0's settings, so that its state is complete), S1TASKS, S1WORDS, APART=1 (stage 1's
// vectorsApart), INIT (a model folder to start from: its decoder is kept, stage 1 replaces the token path), STEPS, LR, SCORE.
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { trainLabModel } from '../../dist/src/lab/train-visual.js';
import { labTokenizerModel } from '../../dist/src/lab/datasets.js';
import { scoreSmallPrint } from '../../dist/src/lab/evaluate.js';
import { loadModel } from '../../dist/src/models/index.js';
const env = process.env;
const out = env.OUT, stateDir = join(out, 'state');
await mkdir(stateDir, { recursive: true });
const s0 = join(stateDir, 'stage0.safetensors');
if (!(await stat(s0).catch(() => undefined))) await copyFile(env.STAGE0, s0);
const plan = FULL_PLAN.mra;
const t = (m) => console.log(new Date().toISOString().slice(11, 19), m);
const tasks0 = env.TASKS0 ? { tasks: { crops: Number(env.TASKS0.split(',')[0]), images: Number(env.TASKS0.split(',')[1]) } } : {};
const train = {
  ...plan.train,
  pretrain: { ...plan.train.pretrain, steps: Number(env.STEPS0), lr: Number(env.LR0), words: Number(env.WORDS0 ?? 0), blankWords: true, ...tasks0 },
  readingFromStageZero: false, readingBlanks: 1, placeCrutchUntil: undefined, ease: 0, freezeVision: true,
  tokenPath: { sheets: 64, codes: 150, words: Number(env.S1WORDS ?? 150), blanks: 1, check: 100, steps: 1500, batch: 8, lr: 2e-3, warmup: 50, vectors: 0.5, tasks: Number(env.S1TASKS ?? 200), vectorsApart: env.APART === '1' },
  // Without stage 2 the place aid's vectors would not be the ones the decoder learnt: off.
  ...(env.INIT ? { initFrom: env.INIT, placeAid: 0 } : {}),
  readout: env.INIT ? undefined : { steps: 2000, lr: 1e-3, batch: 4, attention: 1, aidLayer: 1, positionLayer: 0, givePlaceUntil: 800, placeAid: 300, noise: 0.25, firstUntil: 0 },
  steps: Number(env.STEPS ?? 1), lr: Number(env.LR ?? 0), warmup: 30,
};
const tok = FULL_PLAN.tokenizer;
await trainLabModel(out, labLlavaHrModel(plan.shape), labTokenizerModel(tok.seed, tok.count, tok.vocab), {
  ...train, threads: 2, saveEvery: 100, stateDir, stageZeroCheck: { seed: 1_000_000, count: 50 }, log: t,
  onTokenPathStep: (r) => { if (r.step % 250 === 0) t(`stage 1 step ${r.step} reading ${r.reading.toFixed(3)} acc ${(100 * r.accuracy).toFixed(1)} vectors ${r.vectors?.toFixed(3)}`); },
  onReadoutStep: (r) => { if (r.step % 100 === 0) t(`stage 2 step ${r.step} answer ${r.answer.toFixed(3)} attention ${r.attention?.toFixed(3)}`); },
  onStep: (r) => { if (r.step % 25 === 0 || r.step < 5) t(`whole step ${r.step} answer ${r.loss.toFixed(3)} reading ${r.reading?.toFixed(3)} attention ${r.attention?.toFixed(3)} place ${r.place?.toExponential(2)} lr ${r.lr.toExponential(2)}`); },
});
if (env.SCORE) {
  const score = await scoreSmallPrint(await loadModel(out, { threads: 2 }), { seed: 1_000_000, count: Number(env.SCORE) });
  t(`score on ${score.samples}: exact ${(100 * score.exact).toFixed(1)} %, characters ${(100 * score.characters).toFixed(1)} %`);
  for (const e of score.examples.slice(0, 10)) t(JSON.stringify(e));
}
