// Token cross-entropy with an ignored label and seeded dropout (issue #11): values against plain TypeScript
// references, gradients against finite differences in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../src/graph/ir.js';
import * as op from '../src/graph/ops/index.js';
import { Session, ort } from '../src/runtime/session.js';
import { crossEntropy, headsAttentionCrossEntropy } from '../src/train/loss.js';
import { gradCheck } from './helpers/gradcheck.js';

const targets = [2, 0, 4, 0, 1, 3]; // 0 is ignored

/** mean over targets ≠ 0 of logsumexp(row) − row[target], in float64. */
function referenceCrossEntropy(logits: Float64Array, vocab: number): number {
  let total = 0, count = 0;
  targets.forEach((t, r) => {
    if (t === 0) return;
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    total += lse - row[t]!;
    count++;
  });
  return total / count;
}

test('cross-entropy ignores its ignore index and averages over the remaining targets of the whole batch', async () => {
  const vocab = 5;
  const logits = Float64Array.from({ length: 6 * vocab }, (_, i) => Math.sin(i * 1.7) * 3);
  const g = new Graph('ce');
  const x = g.input('logits', 'float64', ['b', 's', vocab]);
  const t = g.input('targets', 'int64', ['b', 's']);
  g.output(crossEntropy(x, t, 0), 'loss');
  const session = await Session.fromGraph(g, { threads: 1, optimization: 'basic' });
  const out = await session.run({ logits: new ort.Tensor('float64', logits, [2, 3, vocab]), targets: new ort.Tensor('int64', BigInt64Array.from(targets.map(BigInt)), [2, 3]) });
  await session.dispose();
  assert.ok(Math.abs(Number(out['loss']!.data[0]) - referenceCrossEntropy(logits, vocab)) < 1e-12);

  await gradCheck('cross-entropy', {
    logits: { shape: ['b', 's', vocab], dims: [2, 3, vocab] },
    targets: { shape: ['b', 's'], dims: [2, 3], type: 'int64', values: targets },
  }, (v) => op.mul(crossEntropy(v['logits']!, v['targets']!, 0), 1));
});

test('the attention aid on several heads: each head told its own rows, the mean over every row told; later heads untouched', async () => {
  const [heads, told, seq, keys] = [3, 2, 2, 4];
  const logits = Float64Array.from({ length: heads * seq * keys }, (_, i) => Math.cos(i * 1.3) * 2);
  // Head 0 is told row 1 → key 2; head 1 rows 0 → key 3 and 1 → key 0; everything else (-1) is not told.
  const look = [-1, 2, 3, 0];
  const g = new Graph('aid');
  const x = g.input('logits', 'float64', [1, heads, seq, keys]);
  const t = g.input('targets', 'int64', [1, told, seq]);
  g.output(headsAttentionCrossEntropy(x, told, t, -1), 'loss');
  const session = await Session.fromGraph(g, { threads: 1, optimization: 'basic' });
  const out = await session.run({ logits: new ort.Tensor('float64', logits, [1, heads, seq, keys]), targets: new ort.Tensor('int64', BigInt64Array.from(look.map(BigInt)), [1, told, seq]) });
  await session.dispose();
  let total = 0;
  for (const [h, r, k] of [[0, 1, 2], [1, 0, 3], [1, 1, 0]] as const) {
    const row = logits.subarray((h * seq + r) * keys, (h * seq + r + 1) * keys);
    total += Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[k]!;
  }
  assert.ok(Math.abs(Number(out['loss']!.data[0]) - total / 3) < 1e-12);
});

/** The dropout hash of src/graph/ops/dropout.ts in plain TypeScript. */
function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function referenceKeep(seed: number, site: number, n: number, p: number): boolean[] {
  const key = lowbias32((lowbias32(seed >>> 0) + Math.imul(site + 1, 0x9e3779b9)) >>> 0);
  return Array.from({ length: n }, (_, i) => (lowbias32((i ^ key) >>> 0) >>> 8) * 2 ** -24 >= p);
}

async function runDropout(seed: number, p: number, sites: number): Promise<Float32Array[]> {
  const g = new Graph('dropout');
  const x = g.input('x', 'float32', ['b', 64]);
  const noise = op.DropoutNoise.input(g);
  for (let s = 0; s < sites; s++) g.output(op.dropout(x, p, noise), `y${s}`);
  const session = await Session.fromGraph(g, { threads: 1 });
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(128).fill(1), [2, 64]), dropout_seed: new ort.Tensor('int64', BigInt64Array.of(BigInt(seed)), []) });
  await session.dispose();
  return Array.from({ length: sites }, (_, s) => out[`y${s}`]!.data as Float32Array);
}

test('dropout: a seeded hash per site and element, scaled by 1/(1 − p), reproducible, absent without noise', async () => {
  const p = 0.25;
  const [a, b] = await runDropout(7, p, 2);
  const [again] = await runDropout(7, p, 1);
  const [other] = await runDropout(8, p, 1);
  for (const [site, y] of [a!, b!].entries()) {
    const keep = referenceKeep(7, site, 128, p);
    y.forEach((v, i) => assert.equal(v, keep[i] ? Math.fround(1 / (1 - p)) : 0, `site ${site} element ${i}`));
  }
  assert.deepEqual(again, a, 'same seed, same mask');
  assert.notDeepEqual(b, a, 'each site draws its own mask');
  assert.notDeepEqual(other, a, 'another seed, another mask');
  const kept = a!.filter((v) => v !== 0).length / 128;
  assert.ok(kept > 0.6 && kept < 0.9, `kept fraction ${kept}`);

  const g = new Graph('eval');
  const x = g.input('x', 'float32', [4]);
  assert.equal(op.dropout(x, p, undefined), x, 'no noise (evaluation): the identity');
});

test('dropout gradient: the kept elements, scaled', async () => {
  await gradCheck('dropout', { x: { shape: ['b', 8], dims: [2, 8] }, dropout_seed: { shape: [], dims: [], type: 'int64', values: [3] } },
    (v) => op.dropout(v['x']!, 0.5, new op.DropoutNoise(v['dropout_seed']!)));
});
