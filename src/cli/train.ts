import { appendFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-write.js';
import { LAVIN_TRAIN_DEFAULTS, LavinRun, runCheckpoints, type LavinTrainOptions } from '../train/lavin.js';
import { writeCurvesPng } from '../train/plot.js';
import { parseCommandLine, type CommandHelp } from './args.js';
import { positiveInt } from './model-args.js';
import { Progress } from './progress.js';

const USAGE = 'usage: egret train lavin --model DIR --clip FILE --data SQA_DIR (--out DIR | --resume DIR) [--adapter FILE] [--split train] ' +
  '[--batch-size N] [--accum-iter N] [--epochs N] [--max-steps N] [--no-shuffle] [--seed S] [--dropout P] [--lr X] [--schedule constant|cosine] [--trace FILE.safetensors]';

const d = LAVIN_TRAIN_DEFAULTS;

export const TRAIN_HELP: CommandHelp = {
  usage: USAGE,
  summary: "Trains LaVIN's adapters on a ScienceQA-layout folder with the official recipe (luogen1996/LaVIN scripts/finetuning_sqa_7b.sh on one process); checkpoints in LaVIN's layout, loss.csv and loss.png in --out.",
  options: {
    model: { type: 'string' }, clip: { type: 'string' }, adapter: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' },
    resume: { type: 'string' }, split: { type: 'string' }, 'batch-size': { type: 'string' }, 'accum-iter': { type: 'string' },
    epochs: { type: 'string' }, 'warmup-epochs': { type: 'string' }, blr: { type: 'string' }, lr: { type: 'string' }, 'min-lr': { type: 'string' },
    'weight-decay': { type: 'string' }, dropout: { type: 'string' }, schedule: { type: 'string' }, 'max-steps': { type: 'string' },
    seed: { type: 'string' }, 'no-shuffle': { type: 'boolean' }, trace: { type: 'string' }, threads: { type: 'string' },
    temperature: { type: 'string' }, 'max-words': { type: 'string' },
  },
  describe: {
    model: 'the frozen Meta LLaMA directory (as for inference)',
    clip: "OpenAI's CLIP (state dict or TorchScript archive)",
    adapter: 'start from these adapters (a LaVIN checkpoint); default: fresh ones, initialised as LaVIN does (seeded)',
    data: 'ScienceQA folder: problems.json, pid_splits.json, images/<split>/<pid>/',
    out: 'run folder: checkpoint-N.pth (N = epoch), loss.csv, loss.png; must not hold another run',
    resume: 'continue the run in this folder from its latest checkpoint (same options)',
    split: `split of pid_splits.json (default ${d.split})`,
    'batch-size': `samples per micro-batch (default ${d.batchSize}, --batch_size)`,
    'accum-iter': `micro-batches per update (default ${d.accumIter}: 4 × the official 2 GPUs, --accum_iter)`,
    epochs: `default ${d.epochs} (--epochs)`,
    'warmup-epochs': `linear warm-up (default ${d.warmupEpochs}, --warmup_epochs)`,
    blr: `base rate: lr = blr × batch × accum / 256 (default ${d.blr}, --blr)`,
    lr: 'absolute learning rate, bypassing the scaling rule (--lr)',
    'min-lr': `end of the cosine (default ${d.minLr}, --min_lr)`,
    'weight-decay': `AdamW decay of rank ≥ 2 tensors not ending in .bias (default ${d.weightDecay}, --weight_decay); betas (0.9, 0.95)`,
    dropout: `adapter dropout (default ${d.dropout}, RepAdapter_Router's)`,
    schedule: 'cosine (default: warm-up, then half-cycle cosine) or constant (--lr at every step, no warm-up)',
    'max-steps': 'stop after N updates',
    seed: `seed of the data order, the dropout and fresh adapters (default ${d.seed}, --seed)`,
    'no-shuffle': "the split's order every epoch",
    trace: 'write losses (F32 [steps]), grad.<name> (first step) and param_step1.<name> to this safetensors file',
    temperature: `router temperature of fresh adapters (default ${d.temperature}: 7B's; --temperature)`,
    'max-words': `sequence length (default ${d.maxWords}, --max_seq_len)`,
  },
};

function number(value: string | undefined, name: string, fallback: number, check: (x: number) => boolean = (x) => x >= 0): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (!Number.isFinite(x) || !check(x)) throw new InputError(`--${name} must be a valid number, got '${value}'`);
  return x;
}

/** `egret train lavin`. */
export async function trainCommand(args: string[]): Promise<void> {
  const [what, ...rest] = args;
  if (what === '--help' || what === '-h') parseCommandLine(['--help'], TRAIN_HELP);
  if (what !== 'lavin') throw new InputError(`unknown training '${what ?? ''}' (lavin); ${USAGE}`);
  const v = parseCommandLine(rest, TRAIN_HELP).values as Record<string, string | boolean | undefined>;
  const str = (k: string) => v[k] as string | undefined;
  for (const k of ['model', 'clip', 'data']) if (!str(k)) throw new InputError(`--${k} is required; ${USAGE}`);
  const resume = str('resume');
  const out = resume ?? str('out');
  if (!out) throw new InputError(`--out DIR (or --resume DIR) is required; ${USAGE}`);
  if (resume && str('out') && str('out') !== resume) throw new InputError('--resume DIR continues the run in DIR: give --out the same folder, or leave it out');
  if (existsSync(out) && !statSync(out).isDirectory()) throw new InputError(`--out ${out} is not a folder`);
  const existing = await runCheckpoints(out);
  if (resume) {
    if (existing.length === 0) throw new InputError(`--resume ${resume}: no checkpoint-N.pth to continue from`);
    if (str('adapter')) throw new InputError('--resume continues from the run\'s own checkpoint: leave out --adapter');
  } else if (existing.length > 0) {
    throw new InputError(`--out ${out} holds another run's checkpoints (${existing.join(', ')}): give --resume ${out} to continue it, or another folder`);
  }
  const schedule = str('schedule') ?? d.schedule;
  if (schedule !== 'cosine' && schedule !== 'constant') throw new InputError(`--schedule must be cosine or constant, got '${schedule}'`);
  if (schedule === 'constant' && str('lr') === undefined && str('blr') === undefined) throw new InputError('--schedule constant needs --lr X (or --blr)');
  const options: LavinTrainOptions = {
    ...d,
    split: str('split') ?? d.split,
    batchSize: positiveInt(str('batch-size'), 'batch-size', d.batchSize)!,
    accumIter: positiveInt(str('accum-iter'), 'accum-iter', d.accumIter)!,
    epochs: positiveInt(str('epochs'), 'epochs', d.epochs)!,
    warmupEpochs: number(str('warmup-epochs'), 'warmup-epochs', d.warmupEpochs),
    blr: number(str('blr'), 'blr', d.blr, (x) => x > 0),
    ...(str('lr') !== undefined ? { lr: number(str('lr'), 'lr', 0, (x) => x > 0) } : {}),
    minLr: number(str('min-lr'), 'min-lr', d.minLr),
    weightDecay: number(str('weight-decay'), 'weight-decay', d.weightDecay),
    dropout: number(str('dropout'), 'dropout', d.dropout, (x) => x >= 0 && x < 1),
    schedule,
    ...(str('max-steps') !== undefined ? { maxSteps: positiveInt(str('max-steps'), 'max-steps') } : {}),
    seed: number(str('seed'), 'seed', d.seed, (x) => Number.isInteger(x) && x >= 0),
    shuffle: v['no-shuffle'] !== true,
    temperature: number(str('temperature'), 'temperature', d.temperature, (x) => x > 0),
    maxWords: positiveInt(str('max-words'), 'max-words', d.maxWords)!,
    ...(str('threads') !== undefined ? { threads: positiveInt(str('threads'), 'threads') } : {}),
  };
  const latest = resume ? join(out, existing.at(-1)!) : undefined;
  const adapter = latest ?? str('adapter');
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const run = await LavinRun.open({ model: str('model')!, clip: str('clip')!, data: str('data')!, ...(adapter ? { adapter } : {}) }, options, log);
  try {
    mkdirSync(out, { recursive: true });
    const csv = join(out, 'loss.csv');
    if (!resume || !existsSync(csv)) writeFileSync(csv, 'step,epoch,lr,loss,tokens_per_s\n');
    const history = { loss: [] as number[], lr: [] as number[] };
    const trace = str('trace');
    const traced: Record<string, TensorToWrite> = {};
    const losses: number[] = [];
    if (resume) log(`resuming at update ${run.position.step} (epoch ${run.position.epoch}, micro-batch ${run.position.batch}) from ${latest}`);
    const progress = new Progress('training LaVIN', run.totalSteps, run.position.step);
    while (!run.done) {
      const epochBefore = run.position.epoch;
      const report = await run.step();
      losses.push(report.loss);
      history.loss.push(report.loss);
      history.lr.push(report.lr);
      appendFileSync(csv, `${report.step},${(report.epoch + report.batch / run.batchesPerEpoch).toFixed(4)},${report.lr},${report.loss},${report.tokensPerSecond.toFixed(1)}\n`);
      if (trace && losses.length === 1) {
        for (const [name, g] of report.grads ?? []) traced[`grad.${name}`] = { dtype: 'F32', shape: shapeOf(run, name), data: g };
        for (const [name, p] of run.parameters()) traced[`param_step1.${name}`] = { dtype: 'F32', shape: shapeOf(run, name), data: p };
      }
      progress.advance(1, `loss ${report.loss.toFixed(4)} lr ${report.lr.toExponential(2)} ${report.tokensPerSecond.toFixed(0)} tok/s`);
      await writeCurvesPng(join(out, 'loss.png'), 'LaVIN adapters: loss and lr', [
        { label: 'loss', values: history.loss, color: [200, 40, 40] },
        { label: 'lr', values: history.lr, color: [40, 90, 200] },
      ]);
      // A checkpoint at each epoch's end (util/misc.py's checkpoint-{epoch}) and at the run's.
      const epochEnded = run.position.batch >= run.batchesPerEpoch || run.position.epoch > epochBefore;
      if (epochEnded || run.done) await run.save(join(out, `checkpoint-${run.position.epoch}.pth`));
    }
    progress.finish();
    if (trace) {
      traced['losses'] = { dtype: 'F32', shape: [losses.length], data: Float32Array.from(losses) };
      await writeSafetensors(trace, traced);
    }
    process.stdout.write(`${run.position.step} updates; last loss ${losses.at(-1)?.toFixed(4) ?? '—'}; checkpoints in ${out}\n`);
  } finally {
    await run.dispose();
  }
}

function shapeOf(run: LavinRun, bare: string): number[] {
  return [...run.shapes.get(bare)!];
}
