import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { checkContext } from '../generate/generate.js';
import { calibrateVtw } from '../methods/vtw-calibrate.js';
import { vtwSidecarPath, writeVtwSidecar } from '../methods/vtw.js';
import type { ChatModel } from '../models/index.js';
import type { PreparedPrompt } from '../models/prompt.js';
import { tokenizeImagePrompt } from '../text/image-prompt.js';
import { renderPrompt } from '../text/templates.js';
import { loadImage } from '../vision/decode.js';
import type { RGBImage } from '../vision/image.js';
import type { CommandHelp } from './args.js';
import { openModel, parseCommandArgs } from './model-args.js';
import { Progress } from './progress.js';

const USAGE = 'usage: egret calibrate vtw --model DIR --data FILE.jsonl [--eta 0.003] [--min-layer 1] [--save] [--json]';

export const CALIBRATE_HELP: CommandHelp = {
  usage: USAGE,
  summary: "Picks VTW's withdrawal layer K by the official rule: the first layer whose mean KL(P_vtw || P_orig) over the samples is at most eta.",
  options: { data: { type: 'string' }, eta: { type: 'string' }, 'min-layer': { type: 'string' }, save: { type: 'boolean' }, json: { type: 'boolean' } },
  describe: { data: 'calibration samples: one {"image": "path relative to the file", "prompt": "..."} per line' },
};

/** `egret calibrate vtw`: the official KL search for the withdrawal layer, its whole curve, optionally saved beside the model. */
export async function calibrateCommand(args: string[]): Promise<void> {
  const [method, ...rest] = args;
  if (method === '--help' || method === '-h') parseCommandArgs(['--help'], CALIBRATE_HELP);
  if (method !== 'vtw') throw new InputError(`unknown calibration '${method ?? ''}' (vtw); ${USAGE}`);
  const values = parseCommandArgs(rest, CALIBRATE_HELP);
  if (typeof values.data !== 'string') throw new InputError(`--data is required; ${USAGE}`);
  const eta = values.eta === undefined ? 0.003 : Number(values.eta);
  if (!(eta >= 0) || !Number.isFinite(eta)) throw new InputError(`--eta must be a number ≥ 0, got '${String(values.eta)}'`);
  const minLayer = values['min-layer'] === undefined ? 1 : Number(values['min-layer']);
  if (!Number.isInteger(minLayer) || minLayer < 1) throw new InputError(`--min-layer must be an integer ≥ 1, got '${String(values['min-layer'])}'`);
  const samples = await readCalibrationData(values.data);
  // Every sample's image decoded before the model loads: a wrong path costs no load.
  const images = await Promise.all(samples.map((s) => (s.image === undefined ? undefined : loadImage(s.image))));
  const model = await openModel(values, USAGE);
  try {
    if (minLayer >= model.decoder.config.layers) throw new InputError(`--min-layer ${minLayer} leaves no candidate: the model has ${model.decoder.config.layers} layers (candidates ${minLayer}..L-1)`);
    const bar = new Progress('calibrating VTW', samples.length);
    const prompts: PreparedPrompt[] = [];
    for (const [i, s] of samples.entries()) {
      const prompt = await prepareSample(model, s, images[i]);
      checkContext([prompt], model.decoder.config.maxPositions);
      if (prompt.visual.length === 0) throw new InputError(`${values.data}: sample ${i + 1} has no visual tokens (VTW withdraws them: every sample needs an image and a model that takes images)`);
      prompts.push(prompt);
    }
    const result = await calibrateVtw(model.decoder, prompts, { minLayer, eta, onProgress: () => bar.advance() });
    bar.finish();
    const kl = Object.fromEntries([...result.kl].map(([k, v]) => [String(k), v]));
    if (values.save && result.layer !== undefined) {
      const path = await writeVtwSidecar(vtwSidecarPath(values.model!, values.adapter), { layer: result.layer, eta, samples: samples.length, kl });
      process.stderr.write(`saved K=${result.layer} to ${path}; later runs of this model withdraw there by default\n`);
    }
    if (result.layer === undefined) {
      process.stderr.write(`no withdrawal layer has a mean KL ≤ eta ${eta} (smallest ${Math.min(...result.kl.values()).toExponential(3)}): ` +
        'raise --eta or calibrate with more samples; nothing saved\n');
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ layer: result.layer ?? null, kl, eta, samples: samples.length })}\n`);
    } else {
      process.stdout.write(`K  mean KL(P_vtw || P_orig)\n`);
      for (const [k, v] of result.kl) process.stdout.write(`${String(k).padEnd(3)}${v.toExponential(4)}${k === result.layer ? '  <- chosen' : ''}\n`);
      process.stdout.write(result.layer === undefined ? 'no K qualifies\n' : `layer ${result.layer}\n`);
    }
  } finally {
    await model.dispose();
  }
}

interface CalibrationSample {
  image?: string;
  prompt: string;
}

/** Calibration data: one `{"image": "path relative to the file", "prompt": "question"}` per line (CONTRACT.md). */
async function readCalibrationData(file: string): Promise<CalibrationSample[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const samples: CalibrationSample[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      throw new InputError(`${file}:${i + 1}: invalid JSON`);
    }
    const { image, prompt } = (obj ?? {}) as { image?: unknown; prompt?: unknown };
    if (typeof prompt !== 'string') throw new InputError(`${file}:${i + 1}: 'prompt' must be a string`);
    if (image !== undefined && typeof image !== 'string') throw new InputError(`${file}:${i + 1}: 'image' must be a path`);
    samples.push({ prompt, ...(image !== undefined ? { image: resolve(dirname(file), image) } : {}) });
  });
  if (samples.length === 0) throw new InputError(`${file}: no calibration samples`);
  return samples;
}

async function prepareSample(model: ChatModel, sample: CalibrationSample, image: RGBImage | undefined): Promise<PreparedPrompt> {
  const images = image ? [image] : [];
  const ids = tokenizeImagePrompt(model.tokenizer, renderPrompt(model.defaultTemplate, [{ role: 'user', text: sample.prompt, images: images.length }]));
  return model.prepare(ids, images);
}
