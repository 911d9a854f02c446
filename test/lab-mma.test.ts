// The MMA lab's models: the tiny LLaMA trained from scratch and saved in Meta's layout (names, wq/wk row order)
// gives, through egret's ordinary Meta loader, the logits its training graph computes; the tiny CLIP saved in
// OpenAI's layout is read by LaVIN's --clip path and runs in a LaVIN model with adapters written by LavinRun.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import './helpers/env.js';
import { egret } from './helpers/cli.js';
import { labTokenizerModel, writeScienceQaDataset } from '../src/lab/datasets.js';
import { sceneCaption } from '../src/lab/train-llama.js';
import { MMA_SETTINGS } from '../src/lab/mma.js';
import { TINY_CLIP_FILE, trainTinyClip, sceneTargets, type TinyClipShape } from '../src/lab/tiny-clip.js';
import { buildTinyLlamaForward, metaFfnWidth, tinyLlamaConfig, tinyLlamaTensors, type TinyLlamaShape } from '../src/lab/tiny-llama.js';
import { answerAidTargets, heldOutLoss, labLmSequences, lmBatch, trainTinyLlama } from '../src/lab/train-llama.js';
import { scienceQaSample } from '../src/lab/scienceqa.js';
import { MemorySource } from '../src/io/memory-source.js';
import { openCheckpointFile } from '../src/io/checkpoint.js';
import { CausalLM, openLlama } from '../src/models/llama/load.js';
import { lavinClipConfig } from '../src/models/lavin/vision.js';
import { Session } from '../src/runtime/session.js';
import { loadTokenizer } from '../src/text/load.js';
import { LAVIN_TRAIN_DEFAULTS, LavinRun } from '../src/train/lavin.js';

const SHAPE: TinyLlamaShape = { width: 32, layers: 2, heads: 2, vocab: 512, multipleOf: 16 };
const CLIP: TinyClipShape = { width: 32, layers: 6, heads: 2, patch: 14, imageSize: 56, embedDim: 16 };

let dir: string;
let tensors: Map<string, Float32Array>;
let firstLoss: number;
let lastLoss: number;
let answerAid: { firstLoss: number; lastLoss: number } | undefined;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egret-lab-mma-'));
  const trained = await trainTinyLlama(join(dir, 'llama'), SHAPE, labTokenizerModel(0, 200, SHAPE.vocab), { seed: 3, steps: 30, batchSize: 4, lr: 1e-2, warmup: 3, threads: 1, attention: 1 });
  ({ tensors } = trained);
  ({ firstLoss, lastLoss, answerAid } = trained.report);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("Meta's FFN width rule", () => {
  assert.equal(metaFfnWidth(4096, 256), 11008); // LLaMA-7B
  assert.equal(metaFfnWidth(128, 64), 384);
});

test('the tiny LLaMA learns: its training loss and its held-out loss through the Meta loader fall below chance', async () => {
  const chance = Math.log(SHAPE.vocab);
  assert.ok(firstLoss > lastLoss + 1, `${firstLoss} → ${lastLoss}`);
  const tokenizer = await loadTokenizer(join(dir, 'llama'));
  const heldOut = [...labLmSequences(tokenizer, 7, 0), ...labLmSequences(tokenizer, 7, 1)].map((s) => s.ids);
  const loss = await heldOutLoss(join(dir, 'llama'), heldOut, 1);
  assert.ok(loss < chance - 1, `held-out loss ${loss} vs ln V ${chance}`);
});

test("each problem's answer is placed: the row before its letter, each option's letter and last token", async () => {
  // The MMA lab's tokenizer, which spells every letter after "The answer is" as one piece (a tiny one may not: " D" as "▁", "D").
  const { count, vocab } = MMA_SETTINGS.full.tokenizer;
  mkdirSync(join(dir, 'mma-tokenizer'));
  writeFileSync(join(dir, 'mma-tokenizer', 'tokenizer.model'), labTokenizerModel(0, count, vocab));
  const tokenizer = await loadTokenizer(join(dir, 'mma-tokenizer'));
  let placed = 0;
  for (let index = 0; index < 40; index++) {
    const { problem } = scienceQaSample(5, index);
    const [{ ids, answer }] = labLmSequences(tokenizer, 5, index);
    if (!answer) continue;
    placed++;
    const letter = 'ABCDE'[problem.answer]!;
    assert.ok(tokenizer.decode(ids.slice(0, answer.row + 1)).endsWith('Response:The answer is'));
    assert.equal(tokenizer.decode(ids.slice(answer.row + 1, answer.row + 2)).trim(), letter);
    assert.equal(ids[answer.row + 1], answer.letters[problem.answer]);
    assert.deepEqual(answer.letters.map((id) => tokenizer.decode([id]).trim()), problem.choices.map((_, i) => 'ABCDE'[i]));
    problem.choices.forEach((choice, i) => {
      const { letter: at, end } = answer.options[i]!;
      assert.ok(tokenizer.decode(ids.slice(0, at + 1)).endsWith(`(${'ABCDE'[i]}`));
      assert.ok(tokenizer.decode(ids.slice(0, end + 1)).endsWith(`(${'ABCDE'[i]}) ${choice}`));
    });
    assert.equal(answer.skill, problem.skill);
  }
  assert.equal(placed, 40);
});

test("the aids' targets: the answer row looks at its correct option's end, each option's tokens at its letter", () => {
  const answer = { row: 9, options: [{ letter: 2, end: 4 }, { letter: 5, end: 7 }], letters: [40, 41], answer: 1, skill: 'x' };
  const seq = 12;
  const targets = answerAidTargets([{ ids: [], answer }, { ids: [] }], seq);
  const rows = (t: { data: unknown }, b: number) => [...(t.data as BigInt64Array).subarray(b * seq, (b + 1) * seq)].map(Number);
  const I = -100;
  assert.deepEqual(rows(targets.answer, 0), [I, I, I, I, I, I, I, I, I, 7, I, I]);
  assert.deepEqual(rows(targets.binding, 0), [I, I, I, 2, 2, I, 5, 5, I, I, I, I]);
  assert.deepEqual(rows(targets.letter, 0), [I, I, I, I, I, I, I, I, I, 41, I, I]);
  for (const t of [targets.answer, targets.binding, targets.letter]) assert.ok(rows(t, 1).every((v) => v === I));
});

test("the answer aid teaches the last layer's first head to look at the correct option", () => {
  assert.ok(answerAid, 'the run reports the aid');
  assert.ok(answerAid.firstLoss > answerAid.lastLoss + 0.5, `${answerAid.firstLoss} → ${answerAid.lastLoss}`);
});

test('saved in Meta\'s layout, the trained LLaMA gives its training graph\'s logits through openLlama', async () => {
  const saved = await openCheckpointFile(join(dir, 'llama', 'consolidated.00.pth'));
  const names = saved.list().map((t) => t.name);
  await saved.close();
  assert.ok(names.includes('layers.1.attention.wq.weight') && names.includes('tok_embeddings.weight') && names.includes('output.weight'));
  assert.ok(!names.some((n) => n.startsWith('model.')));

  const specs = tinyLlamaTensors(SHAPE);
  const config = tinyLlamaConfig(SHAPE);
  const source = new MemorySource(Object.fromEntries([...specs].map(([name, spec]) => [name, { shape: spec.shape, data: tensors.get(name)! }])));
  const { graph } = buildTinyLlamaForward(config, source);
  const session = await Session.fromGraph(graph, { threads: 1 });
  const tokenizer = await loadTokenizer(join(dir, 'llama'));
  const [sequence] = labLmSequences(tokenizer, 9, 2);
  const prompt = sequence!.ids.slice(0, 40);
  const feeds = lmBatch([prompt]);
  delete feeds['targets'];
  const expected = (await session.run(feeds))['logits']!.data as Float32Array;
  await session.dispose();

  const weights = await openLlama(join(dir, 'llama'));
  assert.deepEqual([weights.config.hidden, weights.config.layers, weights.config.heads, weights.config.intermediate, weights.config.vocab],
    [SHAPE.width, SHAPE.layers, SHAPE.heads, metaFfnWidth(SHAPE.width, SHAPE.multipleOf), SHAPE.vocab]);
  const lm = await CausalLM.build(weights, { threads: 1 });
  await weights.source.close();
  const { logits } = await lm.decoder.forward(lm.decoder.newCache(1), {
    embeds: lm.embed(prompt), seq: prompt.length, counts: [prompt.length], positions: [prompt.map((_, i) => i)], logitRows: [prompt.map((_, i) => i)],
  });
  await lm.dispose();
  assert.equal(logits.length, expected.length);
  let worst = 0;
  for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(logits[i]! - expected[i]!));
  assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
  // Not trivially equal: the logits vary along the sequence.
  assert.ok(Math.abs(expected[0]! - expected[(prompt.length - 1) * SHAPE.vocab]!) > 1e-3);
});

test('a picture\'s caption and pretraining targets say what it shows', () => {
  let index = 0;
  while (!scienceQaSample(0, index).scene) index++;
  const scene = scienceQaSample(0, index).scene!;
  const caption = sceneCaption(scene);
  assert.equal(caption.split('; ').length, scene.objects.length);
  for (const o of scene.objects) assert.ok(caption.includes(`${o.colour} ${o.shape} at the `), caption);
  const targets = sceneTargets(scene);
  const counted = targets.slice(35, 40).reduce((a, b) => a + b, 0);
  assert.equal(counted, Math.min(scene.objects.length, 7 * 5));
});

test('the tiny CLIP, saved in OpenAI\'s layout, is read by LaVIN\'s --clip path and runs in a LaVIN model', async () => {
  const clipDir = join(dir, 'clip');
  const report = await trainTinyClip(clipDir, CLIP, { seed: 1, steps: 3, batchSize: 4, lr: 1e-3, warmup: 1, threads: 1 });
  assert.equal(report.steps, 3);
  const file = join(clipDir, TINY_CLIP_FILE);
  const source = await openCheckpointFile(file);
  const config = await lavinClipConfig(source, file);
  assert.ok(source.has('visual.proj') && source.has('visual.transformer.resblocks.5.attn.in_proj_weight'));
  await source.close();
  assert.deepEqual([config.hidden, config.layers, config.heads, config.patchSize, config.imageSize], [CLIP.width, CLIP.layers, CLIP.heads, CLIP.patch, CLIP.imageSize]);

  // LaVIN's initial adapters for this LLaMA and CLIP, as `egret train lavin` starts them, then an image question.
  const data = join(dir, 'sqa');
  await writeScienceQaDataset(data, { seed: 0, count: 12 });
  const adapter = join(dir, 'init.pth');
  const run = await LavinRun.open({ model: join(dir, 'llama'), clip: file, data }, { ...LAVIN_TRAIN_DEFAULTS, batchSize: 1, threads: 1 });
  await run.save(adapter).finally(() => run.dispose());
  let index = 0;
  while (!scienceQaSample(0, index).scene || scienceQaSample(0, index).problem.split !== 'train') index++;
  const image = join(data, 'images', 'train', String(index + 1), 'image.png');
  const r = await egret('generate', '--model', join(dir, 'llama'), '--clip', file, '--adapter', adapter, '--image', image, '--prompt', 'Question: What is shown?',
    '--max-new-tokens', '4', '--json', '--no-cache', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { stats: { visual_tokens: number; new_tokens: number } };
  assert.equal(out.stats.visual_tokens, LAVIN_TRAIN_DEFAULTS.nPrompt);
  assert.ok(out.stats.new_tokens >= 1);
});
