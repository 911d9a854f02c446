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
import { runMraLab, type MraLabPlan } from '../src/lab/mra-lab.js';
import { labChecks, writeLabReport } from '../src/lab/report.js';

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
