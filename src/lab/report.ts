/**
 * The lab's results as people read them: RESULTS.md (the tables that mirror each paper's claim, with the command,
 * time and machine), results.json (every figure), and PNG charts, in one output folder.
 */
import { mkdir } from 'node:fs/promises';
import { writeFileAtomically } from '../io/file.js';
import { join } from 'node:path';
import { writeBarsPng } from '../train/plot.js';
import type { MmaResults, SplitAccuracy } from './mma.js';
import type { MraLabResults } from './mra-lab.js';
import type { AnswerAccuracy } from './train-llama.js';

export interface LabRun {
  command: string;
  quick: boolean;
  machine: string;
  seconds: number;
  date: string;
  /** Whether the MRA rows come from the full run's models (otherwise the quick run's own, which cannot read). */
  fullModels: boolean;
}

export interface LabCheck {
  claim: string;
  holds: boolean | undefined;
  detail: string;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const BLUE: [number, number, number] = [52, 101, 164];
const GREY: [number, number, number] = [150, 150, 150];
const ORANGE: [number, number, number] = [206, 92, 0];

/** How far above chance LaVIN's adapters must answer, in accuracy over all held-out questions (20 points). */
export const ADAPTERS_ABOVE_CHANCE = 0.2;
/** How close VTW's accuracy must stay to the model's without it (2 points). */
export const VTW_TOLERANCE = 0.02;

/**
 * The directions `egret lab --quick` asserts (issue #12): MRA above low-res, VTW within 2 points of no VTW on the
 * MRA model and on the LaVIN model, LaVIN's adapters far above chance.
 */
export function labChecks(mra: MraLabResults, fullModels: boolean, mma?: MmaResults): LabCheck[] {
  return [...mraChecks(mra, fullModels), ...(mma ? mmaChecks(mma) : [])];
}

function mmaChecks(mma: MmaResults): LabCheck[] {
  const above = mma.lavin.all - mma.chance.all;
  const checks: LabCheck[] = [{
    claim: `LaVIN's adapters answer at least ${100 * ADAPTERS_ABOVE_CHANCE} points above chance`,
    holds: above >= ADAPTERS_ABOVE_CHANCE,
    detail: `${pct(mma.lavin.all)} vs chance ${pct(mma.chance.all)} (frozen ${pct(mma.frozen.all)})`,
  }];
  const claim = 'VTW on the LaVIN model at the calibrated K stays within 2 points of no VTW';
  const { vtw } = mma;
  checks.push(vtw.accuracy
    ? { claim, holds: Math.abs(vtw.accuracy.all - mma.lavin.all) <= VTW_TOLERANCE, detail: `K=${vtw.layer}: ${pct(vtw.accuracy.all)} vs ${pct(mma.lavin.all)}` }
    : { claim, holds: false, detail: 'no layer\'s mean KL met the threshold' });
  return checks;
}

function mraChecks(mra: MraLabResults, fullModels: boolean): LabCheck[] {
  const checks: LabCheck[] = [];
  checks.push(fullModels
    ? { claim: 'MRA reads the codes better than the low-resolution model', holds: mra.mra.exact > mra.lowres.exact, detail: `${pct(mra.mra.exact)} vs ${pct(mra.lowres.exact)} exact` }
    : { claim: 'MRA reads the codes better than the low-resolution model', holds: undefined, detail: 'not checked: the full run\'s models are absent (train them with `egret lab`)' });
  const on = mra.vtw.on;
  const claim = 'VTW at the calibrated K stays within 2 points of no VTW';
  // On models that cannot read, both scores are 0 %: agreement there says nothing about VTW.
  if (!fullModels) {
    checks.push({ claim, holds: undefined, detail: `not checked: the full run's models are absent (K=${mra.vtw.layer ?? 'none'}: ${on ? pct(on.exact) : '–'} vs ${pct(mra.vtw.off.exact)})` });
    return checks;
  }
  checks.push(on
    ? { claim: 'VTW at the calibrated K stays within 2 points of no VTW', holds: Math.abs(on.exact - mra.vtw.off.exact) <= VTW_TOLERANCE, detail: `K=${mra.vtw.layer}: ${pct(on.exact)} vs ${pct(mra.vtw.off.exact)}` }
    : { claim: 'VTW at the calibrated K stays within 2 points of no VTW', holds: false, detail: `no layer's mean KL is ≤ eta ${mra.vtw.eta}` });
  return checks;
}

/** "48.0 % of 400 (chance 38.2 %; skill: share, …)". */
function answersLine(a: AnswerAccuracy): string {
  const skills = Object.entries(a.bySkill).map(([skill, s]) => `${skill.toLowerCase()} ${s.right}/${s.asked}`).join(', ');
  return `${pct(a.right / a.asked)} of ${a.asked} (chance ${pct(a.chance / a.asked)}; ${skills})`;
}

function mmaMarkdown(mma: MmaResults): string[] {
  const row = (name: string, a: SplitAccuracy, extra: string) => `| ${name} | ${pct(a.text)} | ${pct(a.image)} | ${pct(a.all)} | ${extra} |`;
  const { vtw } = mma;
  const flops = vtw.prefillFlops;
  return [
    '## MMA: LaVIN\'s adapters on a frozen tiny LLaMA (ScienceQA-like)',
    '',
    `${mma.questions.text} text-only and ${mma.questions.image} image questions of a held-out seed (${mma.heldOutSeed}), LaVIN's QCM-ALE prompt, \`egret eval score scienceqa --extract lavin\`.`,
    '',
    '| model | text-only | image | all | trainable parameters, training |',
    '|---|---|---|---|---|',
    row('chance', mma.chance, ''),
    row('frozen LLaMA + CLIP, initial adapters', mma.frozen, '0'),
    row('LaVIN adapters', mma.lavin, `${mma.adapters.trainableParameters}, ${Math.round(mma.adapters.seconds)} s`),
    ...(vtw.accuracy ? [row(`LaVIN adapters, VTW K=${vtw.layer}`, vtw.accuracy, '')] : []),
    '',
    `The tiny LLaMA: held-out perplexity ${mma.llama.heldOutPerplexity.toFixed(2)}; given each held-out problem's text (a picture as its description) it ranks the right letter first on ` +
      `${answersLine(mma.llama.answers)}. VTW: ${vtw.layer === null ? 'no layer met the KL threshold' : `K=${vtw.layer} of ${vtw.layers} layers`}` +
      (flops ? `; the decoder's prefill FLOPs of an image question ${(flops.decoder / 1e6).toFixed(1)} M → ${(flops.decoderVtw / 1e6).toFixed(1)} M (${pct(1 - flops.decoderVtw / flops.decoder)} fewer), with CLIP ${(flops.total / 1e6).toFixed(1)} M → ${(flops.totalVtw / 1e6).toFixed(1)} M.` : '.'),
    '',
    '![MMA](mma.png)',
    '',
    'The commands that trained and scored the adapters:',
    '',
    '```',
    ...mma.commands,
    '```',
    '',
  ];
}

export function labMarkdown(run: LabRun, mra: MraLabResults, checks: readonly LabCheck[], mma?: MmaResults): string {
  const row = (name: string, s: MraLabResults['mra']) =>
    `| ${name} | ${s.visualTokens} | ${pct(s.exact)} | ${pct(s.characters)} | ${s.model.parameters ?? '?'} | ${s.model.trainingSeconds} s | ${(s.prefillFlops / 1e9).toFixed(2)} |`;
  const vtw = mra.vtw;
  const lines = [
    `# egret lab results${run.quick ? ' (quick)' : ''}`,
    '',
    `\`${run.command}\` — ${run.date}, ${Math.round(run.seconds)} s on ${run.machine}.`,
    run.fullModels ? '' : '\nThe MRA rows come from the quick run\'s own small models, trained for a minute: they show the pipeline, not the claim.\n',
    '## MRA: reading small print at equal visual tokens',
    '',
    `${mra.mra.samples} held-out small-print images (a seed training never saw): exact match of the code, and the share of its characters in place.`,
    '',
    '| model | visual tokens | exact | characters | parameters | training | prefill GFLOPs |',
    '|---|---|---|---|---|---|---|',
    row('LLaVA-HR (MRA)', mra.mra),
    row('LLaVA-1.5 (low resolution)', mra.lowres),
    '',
    `Time to first token of one image: MRA ${mra.firstToken.mraMs.toFixed(0)} ms with ${mra.firstToken.mraTokens} visual tokens, a plain ViT at MRA's resolution ${mra.firstToken.naiveMs.toFixed(0)} ms with ${mra.firstToken.naiveTokens} (${(mra.firstToken.naiveMs / mra.firstToken.mraMs).toFixed(1)}×).`,
    '',
    '![MRA](mra.png)',
    '',
    '## VTW on the MRA model',
    '',
    vtw.layer === undefined
      ? `No withdrawal layer has a mean KL ≤ ${vtw.eta}.`
      : `Calibrated K = ${vtw.layer} (mean KL ≤ ${vtw.eta}; per layer: ${Object.entries(vtw.kl).map(([k, v]) => `K=${k} ${v.toExponential(2)}`).join(', ')}).`,
    '',
    '| | exact | characters | prefill GFLOPs | prefill ms |',
    '|---|---|---|---|---|',
    `| without VTW | ${pct(vtw.off.exact)} | ${pct(vtw.off.characters)} | ${(vtw.off.prefillFlops / 1e9).toFixed(3)} | ${vtw.off.prefillMs.toFixed(1)} |`,
    ...(vtw.on ? [`| VTW at K=${vtw.layer} | ${pct(vtw.on.exact)} | ${pct(vtw.on.characters)} | ${(vtw.on.prefillFlops / 1e9).toFixed(3)} | ${vtw.on.prefillMs.toFixed(1)} |`] : []),
    '',
    ...(mma ? mmaMarkdown(mma) : []),
    '## Checks',
    '',
    ...checks.map((c) => `- ${c.holds === undefined ? '–' : c.holds ? '✓' : '✗'} ${c.claim}: ${c.detail}`),
    '',
  ];
  return lines.join('\n');
}

export async function writeLabReport(dir: string, run: LabRun, mra: MraLabResults, checks: readonly LabCheck[], mma?: MmaResults): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomically(join(dir, 'results.json'), `${JSON.stringify({ run, mra, mma, checks }, null, 2)}\n`);
  await writeFileAtomically(join(dir, 'RESULTS.md'), labMarkdown(run, mra, checks, mma));
  if (mma) {
    await writeBarsPng(join(dir, 'mma.png'), 'ScienceQA-like: accuracy (%)', [
      { label: 'chance', value: 100 * mma.chance.all, color: GREY, text: pct(mma.chance.all) },
      { label: 'frozen', value: 100 * mma.frozen.all, color: GREY, text: pct(mma.frozen.all) },
      { label: 'LaVIN adapters', value: 100 * mma.lavin.all, color: BLUE, text: pct(mma.lavin.all) },
      ...(mma.vtw.accuracy ? [{ label: `adapters + VTW K=${mma.vtw.layer}`, value: 100 * mma.vtw.accuracy.all, color: ORANGE, text: pct(mma.vtw.accuracy.all) }] : []),
    ], { max: 100 });
  }
  await writeBarsPng(join(dir, 'mra.png'), 'Small print: exact match (%)', [
    { label: `MRA, ${mra.mra.visualTokens} tokens`, value: 100 * mra.mra.exact, color: BLUE, text: pct(mra.mra.exact) },
    { label: `low-res, ${mra.lowres.visualTokens} tokens`, value: 100 * mra.lowres.exact, color: GREY, text: pct(mra.lowres.exact) },
    ...(mra.vtw.on ? [{ label: `MRA + VTW K=${mra.vtw.layer}`, value: 100 * mra.vtw.on.exact, color: ORANGE, text: pct(mra.vtw.on.exact) }] : []),
  ], { max: 100 });
  await writeBarsPng(join(dir, 'cost.png'), 'Time to first token (ms)', [
    { label: `MRA, ${mra.firstToken.mraTokens} tokens`, value: mra.firstToken.mraMs, color: BLUE, text: `${mra.firstToken.mraMs.toFixed(0)} ms` },
    { label: `plain ViT, ${mra.firstToken.naiveTokens} tokens`, value: mra.firstToken.naiveMs, color: GREY, text: `${mra.firstToken.naiveMs.toFixed(0)} ms` },
  ]);
}
