const { FULL_PLAN } = await import('/work/main/dist/src/lab/plans.js');
const { labLlavaHrModel } = await import('/work/main/dist/src/lab/models.js');
const { llavaHrConfig } = await import('/work/main/dist/src/models/llava-hr.js');
const { freshTensors } = await import('/work/main/dist/src/train/scratch.js');
const { pretrainConvnext } = await import('/work/main/dist/src/lab/pretrain-convnext.js');
const [steps, images, crops, lr, ease] = process.argv.slice(2).map(Number);
const model = labLlavaHrModel(FULL_PLAN.mra.shape);
const cfg = llavaHrConfig(model.configJson, 'lab');
const t0 = performance.now(); let avg;
await pretrainConvnext(model, freshTensors(model.specs, 0), {
  seed: 0, steps, images, crops, crop: 256, lr, warmup: 50, ease, threads: 2, log: console.log,
  onStep: ({ step, loss, seconds }) => { avg = avg === undefined ? loss : 0.95 * avg + 0.05 * loss; if (step % 10 === 0) console.log(step, loss.toFixed(3), avg.toFixed(3), seconds.toFixed(2) + 's', `t=${((performance.now() - t0) / 1000).toFixed(0)}`); },
});
