// Trains the full plan's MRA model exactly as `egret lab` does (labModel with FULL_PLAN), logging every step.
const { FULL_PLAN } = await import('/work/main/dist/src/lab/plans.js');
const { labModel } = await import('/work/main/dist/src/lab/mra-lab.js');
const { labLlavaHrModel, labLlavaModel } = await import('/work/main/dist/src/lab/models.js');
const which = process.argv[2];
const t0 = performance.now();
const model = which === 'mra' ? labLlavaHrModel(FULL_PLAN.mra.shape) : labLlavaModel(FULL_PLAN.lowres.shape);
const rec = await labModel({ cacheDir: '/work/cache/lab', threads: 2, log: (m) => console.log(m), progress: (what, done, total) => console.log(`${done}/${total} ${what} t=${((performance.now() - t0) / 1000).toFixed(0)}`) },
  which, model, FULL_PLAN.tokenizer, FULL_PLAN[which].train);
console.log(JSON.stringify(rec));
