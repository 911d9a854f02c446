/**
 * The lab's MRA/VTW runner end to end on a tiny plan: models trained from scratch into the cache folder (and
 * reused on a second run without training), scored on held-out images, VTW calibrated, the report written. The
 * tiny models cannot read; what is checked is the pipeline and its counts, not the claims.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MmaResults } from '../src/lab/mma.js';
import { runMraLab, type MraLabPlan, type MraLabResults } from '../src/lab/mra-lab.js';
import { labChecks, labMarkdown, writeLabReport } from '../src/lab/report.js';

const TINY = { vit: { width: 32, layers: 4, heads: 2, patch: 4, imageSize: 16 }, llm: { width: 32, layers: 2, heads: 2, intermediate: 64 }, vocab: 400 };
const TRAIN = { seed: 0, steps: 2, batchSize: 1, lr: 1e-3, warmup: 1 };
const PLAN: MraLabPlan = {
  tokenizer: { seed: 0, count: 40, vocab: 400 },
  mra: { shape: { ...TINY, imageSize: 128, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } }, train: TRAIN },
  lowres: { shape: TINY, train: TRAIN },
  naive: { ...TINY, vit: { ...TINY.vit, imageSize: 64 } },
  heldOutSeed: 1000, evalCount: 2, calibrationSeed: 2000, calibration: 2, eta: 1,
};

test('egret lab runner: trains once per settings, scores, calibrates VTW, writes the report', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'egret-lab-run-'));
  try {
    const logs: string[] = [];
    const ctx = { cacheDir: join(dir, 'cache'), threads: 1, log: (m: string) => logs.push(m) };
    const first = await runMraLab(ctx, PLAN);
    assert.equal(first.mra.samples, 2);
    assert.equal(first.mra.visualTokens, 16);
    assert.equal(first.lowres.visualTokens, 16);
    assert.equal(first.firstToken.naiveTokens, 256);
    assert.ok(first.mra.model.parameters! > 0 && first.mra.model.trainingSeconds >= 0);
    // eta 1 accepts the first candidate: VTW withdraws before layer 1 and the prefill costs less.
    assert.equal(first.vtw.layer, 1);
    assert.ok(first.vtw.on!.prefillFlops < first.vtw.off.prefillFlops);
    assert.equal(logs.filter((m) => /training/.test(m) && !/:.*compiling/.test(m)).length, 2, logs.join('\n'));
    // Each trained model gets a card: its title first, then how it was made and its held-out accuracy.
    const card = readFileSync(join(first.mra.model.dir, 'README.md'), 'utf8');
    assert.match(card, /^# egret lab MRA model: /);
    assert.match(card, /exact match 0\.0 %|exact match \d+\.\d %/);
    assert.match(card, /- training: \d+ s/);
    assert.match(readFileSync(join(first.lowres.model.dir, 'README.md'), 'utf8'), /^# egret lab low-resolution model: /);

    logs.length = 0;
    const second = await runMraLab(ctx, PLAN);
    assert.ok(logs.some((m) => m.startsWith('mra: reusing')) && logs.some((m) => m.startsWith('lowres: reusing')), logs.join('\n'));
    assert.deepEqual(second.mra.examples, first.mra.examples);

    const out = join(dir, 'out');
    const checks = labChecks(first, false);
    assert.deepEqual(checks.map((c) => c.holds), [undefined, undefined]);
    await writeLabReport(out, { command: 'egret lab --quick', quick: true, machine: 'test', seconds: 1, date: 'today', fullModels: false }, first, checks);
    for (const f of ['RESULTS.md', 'results.json', 'mra.png', 'cost.png']) assert.ok(existsSync(join(out, f)), f);
    assert.match(readFileSync(join(out, 'RESULTS.md'), 'utf8'), /\| LLaVA-HR \(MRA\) \| 16 \|/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the MMA checks: adapters 20 points above chance, VTW on LaVIN within 2 points; the report shows them', async () => {
  const split = (all: number) => ({ text: all, image: all, all });
  const mma = (lavin: number, vtw: number | null) => ({
    mode: 'quick', seed: 0, heldOutSeed: 1, questions: { text: 10, image: 10 }, chance: split(0.4), frozen: split(0.42), lavin: split(lavin),
    adapters: { trainableParameters: 1000, seconds: 5, updates: 10, checkpoint: 'x.pth', reused: false }, llama: { heldOutPerplexity: 1.5, answers: { right: 30, asked: 50, chance: 20, bySkill: { 'Count objects': { right: 3, asked: 5 } } } },
    vtw: { layer: vtw === null ? null : 1, layers: 4, kl: {}, accuracy: vtw === null ? null : split(vtw), prefillFlops: null }, commands: ['egret train lavin'],
  }) as unknown as MmaResults;
  const mra = { vtw: { layer: 1, eta: 1, kl: {}, off: { exact: 0 }, on: { exact: 0 } } } as unknown as MraLabResults;
  const holds = (m: MmaResults) => labChecks(mra, false, m).slice(2).map((c) => c.holds);
  assert.deepEqual(holds(mma(0.61, 0.6)), [true, true]);
  assert.deepEqual(holds(mma(0.59, 0.59)), [false, true]);
  assert.deepEqual(holds(mma(0.8, 0.77)), [true, false]);
  assert.deepEqual(holds(mma(0.8, null)), [true, false]);
  const md = labMarkdown({ command: 'egret lab', quick: false, machine: 'test', seconds: 1, date: 'today', fullModels: false },
    { ...mra, mra: { exact: 0, characters: 0, visualTokens: 1, model: {}, prefillFlops: 0 }, lowres: { exact: 0, characters: 0, visualTokens: 1, model: {}, prefillFlops: 0 },
      firstToken: { mraMs: 1, naiveMs: 2, mraTokens: 1, naiveTokens: 4 }, vtw: { layer: 1, eta: 1, kl: {}, off: { exact: 0, characters: 0, prefillFlops: 0, prefillMs: 0 } } } as unknown as MraLabResults,
    labChecks(mra, false, mma(0.61, 0.6)), mma(0.61, 0.6));
  assert.match(md, /\| LaVIN adapters \| 61\.0 % \| 61\.0 % \| 61\.0 % \| 1000, 5 s \|/);
  assert.match(md, /ranks the right letter first on 60\.0 % of 50 \(chance 40\.0 %; count objects 3\/5\)/);
  assert.match(md, /✓ LaVIN's adapters answer at least 20 points above chance: 61\.0 % vs chance 40\.0 %/);
});
