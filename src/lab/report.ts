/**
 * The lab's results as people read them: RESULTS.md (the tables that mirror each paper's claim, with the command,
 * time and machine), results.json (every figure), and PNG charts, in one output folder.
 */
import { mkdir } from 'node:fs/promises';
import { writeFileAtomically } from '../io/file.js';
import { join } from 'node:path';
import { writeBarsPng } from '../train/plot.js';
import type { MraLabResults } from './mra-lab.js';

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

/** The directions `egret lab --quick` asserts (issue #12): MRA above low-res, VTW within 2 points of no VTW. */
export function labChecks(mra: MraLabResults, fullModels: boolean): LabCheck[] {
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
    ? { claim: 'VTW at the calibrated K stays within 2 points of no VTW', holds: Math.abs(on.exact - mra.vtw.off.exact) <= 0.02, detail: `K=${mra.vtw.layer}: ${pct(on.exact)} vs ${pct(mra.vtw.off.exact)}` }
    : { claim: 'VTW at the calibrated K stays within 2 points of no VTW', holds: false, detail: `no layer's mean KL is ≤ eta ${mra.vtw.eta}` });
  return checks;
}

export function labMarkdown(run: LabRun, mra: MraLabResults, checks: readonly LabCheck[]): string {
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
    '## Checks',
    '',
    ...checks.map((c) => `- ${c.holds === undefined ? '–' : c.holds ? '✓' : '✗'} ${c.claim}: ${c.detail}`),
    '',
  ];
  return lines.join('\n');
}

export async function writeLabReport(dir: string, run: LabRun, mra: MraLabResults, checks: readonly LabCheck[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomically(join(dir, 'results.json'), `${JSON.stringify({ run, mra, checks }, null, 2)}\n`);
  await writeFileAtomically(join(dir, 'RESULTS.md'), labMarkdown(run, mra, checks));
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
