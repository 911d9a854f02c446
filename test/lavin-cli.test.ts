// LaVIN through every command (issue #10): logits (the modality token's row first), generate in both position
// modes, chat, serve, calibrate vtw (its sidecar beside the adapters), eval run scienceqa with LaVIN's prompts and
// its recorded settings, and the bad inputs: adapters of the wrong width, a CLIP file that is no CLIP, a TorchScript
// archive that would run code, a checkpoint without its saved args.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { openCheckpoint, openCheckpointFile } from '../src/io/checkpoint.js';
import { writeSafetensors } from '../src/io/safetensors-write.js';
import { tensor as savedTensor, torchSave, type SavedValue } from '../src/io/torch-save.js';
import { maxAbsDiff } from './helpers/compare.js';
import { ROOT, assertInputError, egret, egretSync } from './helpers/cli.js';
import { dataUrl, startServer } from './helpers/serve.js';

const DIR = join(ROOT, 'test/fixtures/tiny-lavin');
const LLAMA = join(DIR, 'llama');
const CLIP = join(DIR, 'clip/ViT-tiny.pt');
const ADAPTER = join(DIR, 'lavin/checkpoint-19.pth');
const LAVIN = ['--model', LLAMA, '--clip', CLIP, '--adapter', ADAPTER, '--threads', '1'];

interface Problem { question: string; hint: string; choices: string[]; answer: number; image: string | null; lecture: string; solution: string }
interface Sample {
  key: string;
  qid: string;
  problem: Problem;
  image_file?: string;
  prompt: string;
  input_ids_contract: number[];
  generation: Record<'official' | 'corrected', { ids: number[] }>;
}
const SAMPLES = (JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { samples: Sample[] }).samples;
const imageArgs = (s: Sample) => (s.image_file ? ['--image', join(DIR, s.image_file)] : []);

test('egret logits of a LaVIN model: row 0 is the modality token, then every prompt row, positions 0..n', async () => {
  const ref = await openCheckpoint(join(DIR, 'expected_infer.safetensors'));
  const dir = mkdtempSync(join(tmpdir(), 'egret-lavin-logits-'));
  try {
    for (const sample of [SAMPLES[0]!, SAMPLES[2]!]) {
      const out = join(dir, `${sample.key}.safetensors`);
      const run = await egret('logits', ...LAVIN, ...imageArgs(sample), `--ids=${sample.input_ids_contract.join(',')}`, '--out', out);
      assert.equal(run.code, 0, run.stderr);
      const got = await openCheckpointFile(out);
      try {
        const reference = await ref.readFloat32(`${sample.key}.prefill_logits`);
        assert.deepEqual(got.info('logits').shape, [reference.length / 400, 400]);
        assert.ok(maxAbsDiff(await got.readFloat32('logits'), reference) <= 1e-4, sample.key);
        const positions = new Int32Array((await got.read('positions')).slice().buffer);
        assert.deepEqual(Array.from(positions), Array.from({ length: reference.length / 400 }, (_, i) => i));
      } finally {
        await got.close();
      }
    }
  } finally {
    await ref.close();
    rmSync(dir, { recursive: true });
  }
});

test('egret generate of a LaVIN model: --prompt through lavin_sqa, greedy ids of both position modes', async () => {
  for (const sample of SAMPLES) {
    for (const mode of ['corrected', 'official'] as const) {
      const run = await egret('generate', ...LAVIN, ...imageArgs(sample), '--prompt', sample.prompt, '--max-new-tokens', '12', '--ignore-eos', '--json',
        ...(mode === 'official' ? ['--official-positions'] : []));
      assert.equal(run.code, 0, run.stderr);
      const out = JSON.parse(run.stdout) as { ids: number[]; stats: { visual_tokens: number } };
      assert.deepEqual(out.ids, sample.generation[mode].ids, `${sample.key} ${mode}`);
      assert.equal(out.stats.visual_tokens, sample.image_file ? 6 : 0);
    }
  }
});

test('VTW and FastV on a LaVIN model: the six visual tokens withdrawn or pruned (counted in FLOPs), K = L the same answer', async () => {
  const sample = SAMPLES[0]!;
  const run = async (...extra: string[]) => {
    const r = await egret('generate', ...LAVIN, ...imageArgs(sample), '--prompt', sample.prompt, '--max-new-tokens', '4', '--ignore-eos', '--json', ...extra);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { ids: number[]; stats: { flops: number; visual_tokens: number } };
  };
  const none = await run('--vtw-layer', 'off');
  const vtw = await run('--vtw-layer', '2');
  const fastv = await run('--fastv', '2:0.5');
  assert.ok(vtw.stats.flops < none.stats.flops, JSON.stringify([none.stats, vtw.stats]));
  // FastV keeps 3 of the 6 from layer 2 on, and pays for its ranking pass (layers < 2 again): with six visual tokens
  // the pass costs more than the pruning saves, and stats.flops says so.
  assert.notEqual(fastv.stats.flops, none.stats.flops);
  assert.ok(fastv.stats.flops > vtw.stats.flops);
  // Withdrawing after the last layer changes nothing (the official no-op).
  assert.deepEqual((await run('--vtw-layer', '4')).ids, none.ids);
});

test('egret chat of a LaVIN model answers each question on its own, with the image', async () => {
  const sample = SAMPLES[0]!;
  const run = await egret('chat', ...LAVIN, ...imageArgs(sample), '--prompt', sample.prompt, '--max-new-tokens', '12');
  assert.equal(run.code, 0, run.stderr);
  const generated = await egret('generate', ...LAVIN, ...imageArgs(sample), '--prompt', sample.prompt, '--max-new-tokens', '12');
  assert.equal(generated.code, 0, generated.stderr);
  assert.equal(run.stdout.trim(), generated.stdout.trim());
  assert.ok(run.stdout.trim().length > 0);
});

test('egret serve of a LaVIN model: the OpenAI client gets egret generate\'s answer', async () => {
  const sample = SAMPLES[0]!;
  const generated = await egret('generate', ...LAVIN, ...imageArgs(sample), '--prompt', sample.prompt, '--max-new-tokens', '12', '--json');
  assert.equal(generated.code, 0, generated.stderr);
  const server = await startServer(LLAMA, '--clip', CLIP, '--adapter', ADAPTER);
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none' });
    const reply = await client.chat.completions.create({
      model: 'llama', max_tokens: 12, temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'text', text: sample.prompt }, { type: 'image_url', image_url: { url: await dataUrl(join(DIR, sample.image_file!)) } }] }],
    });
    assert.equal(reply.choices[0]!.message.content, (JSON.parse(generated.stdout) as { text: string }).text);
  } finally {
    await server.stop();
  }
});

test('egret calibrate vtw of a LaVIN model: the KL curve, and the chosen layer saved beside the adapters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-lavin-calib-'));
  try {
    const adapter = join(dir, 'checkpoint-19.pth');
    copyFileSync(ADAPTER, adapter);
    const data = join(dir, 'calib.jsonl');
    writeFileSync(data, SAMPLES.filter((s) => s.image_file).map((s) => JSON.stringify({ image: join(DIR, s.image_file!), prompt: s.prompt })).join('\n'));
    const run = await egret('calibrate', 'vtw', '--model', LLAMA, '--clip', CLIP, '--adapter', adapter, '--threads', '1', '--data', data, '--eta', '1e9', '--json', '--save');
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { layer: number; kl: Record<string, number> };
    assert.deepEqual(Object.keys(result.kl), ['1', '2', '3']);
    assert.equal(result.layer, 1);
    assert.equal((JSON.parse(readFileSync(`${adapter}.egret-vtw.json`, 'utf8')) as { layer: number }).layer, 1);
    assert.equal(existsSync(join(LLAMA, 'egret-vtw.json')), false, 'the LLaMA folder is left alone');
    // Later runs withdraw at the saved layer: the prefill runs fewer visual tokens than with --vtw-layer off.
    const sample = SAMPLES[0]!;
    const flops = async (...extra: string[]) => {
      const r = await egret('generate', '--model', LLAMA, '--clip', CLIP, '--adapter', adapter, '--threads', '1', ...imageArgs(sample), '--prompt', sample.prompt, '--max-new-tokens', '1', '--json', ...extra);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { stats: { flops: number } }).stats.flops;
    };
    assert.ok(await flops() < await flops('--vtw-layer', 'off'));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('egret eval run scienceqa of a LaVIN model: LaVIN\'s QCM-ALE prompts, its answers, the decoding positions recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-lavin-eval-'));
  try {
    const data = join(dir, 'sqa');
    const problems: Record<string, object> = {};
    for (const s of SAMPLES) {
      problems[s.qid] = { ...s.problem, subject: 'natural science', grade: 'grade3', split: 'test' };
      if (s.image_file) {
        mkdirSync(join(data, 'images/test', s.qid), { recursive: true });
        copyFileSync(join(DIR, s.image_file), join(data, 'images/test', s.qid, 'image.png'));
      }
    }
    writeFileSync(join(data, 'problems.json'), JSON.stringify(problems));
    writeFileSync(join(data, 'pid_splits.json'), JSON.stringify({ test: SAMPLES.map((s) => s.qid) }));
    for (const mode of ['corrected', 'official'] as const) {
      const out = join(dir, `${mode}.jsonl`);
      const run = await egret('eval', 'run', 'scienceqa', ...LAVIN, '--data', data, '--images', join(data, 'images/test'), '--out', out,
        '--max-new-tokens', '12', ...(mode === 'official' ? ['--official-positions'] : []));
      assert.equal(run.code, 0, run.stderr);
      const answers = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { question_id: string; text: string; model_id: string; metadata: Record<string, unknown> });
      assert.deepEqual(answers.map((a) => a.question_id), SAMPLES.map((s) => s.qid));
      for (const [i, answer] of answers.entries()) {
        const sample = SAMPLES[i]!;
        // The fixture's greedy continuation of the fixture's prompt: eval run built LaVIN's prompt for the problem.
        const expected = await egret('generate', ...LAVIN, ...imageArgs(sample), '--ids', sample.input_ids_contract.join(','), '--max-new-tokens', '12', '--json',
          ...(mode === 'official' ? ['--official-positions'] : []));
        assert.equal(answer.text, (JSON.parse(expected.stdout) as { text: string }).text, `${sample.key} ${mode}`);
        assert.equal(answer.metadata['decode_positions'], mode);
        assert.equal(answer.model_id, 'lavin_checkpoint-19.pth');
      }
      const score = await egret('eval', 'score', 'scienceqa', '--data', data, '--predictions', out, '--extract', 'lavin', '--json');
      assert.equal(score.code, 0, score.stderr);
      assert.equal((JSON.parse(score.stdout) as { count: number }).count, SAMPLES.length);
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('LaVIN bad input: exit 2 and one error line, nothing executed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-lavin-bad-'));
  try {
    const ask = ['--prompt', 'Question: hi?', '--max-new-tokens', '1'];
    // A Meta LLaMA of width 32: the checkpoint's adapters (width 64) do not fit it.
    const narrow = join(dir, 'llama-32');
    mkdirSync(narrow);
    writeFileSync(join(narrow, 'params.json'), JSON.stringify({ dim: 32, multiple_of: 32, n_heads: 4, n_layers: 4, norm_eps: 1e-5, vocab_size: -1 }));
    copyFileSync(join(LLAMA, 'tokenizer.model'), join(narrow, 'tokenizer.model'));
    const tensor = (shape: number[]) => ({ dtype: 'F32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) });
    const weights: Record<string, ReturnType<typeof tensor>> = { 'tok_embeddings.weight': tensor([400, 32]), 'norm.weight': tensor([32]), 'output.weight': tensor([400, 32]) };
    for (let i = 0; i < 4; i++) {
      for (const w of ['wq', 'wk', 'wv', 'wo']) weights[`layers.${i}.attention.${w}.weight`] = tensor([32, 32]);
      weights[`layers.${i}.feed_forward.w1.weight`] = tensor([96, 32]);
      weights[`layers.${i}.feed_forward.w3.weight`] = tensor([96, 32]);
      weights[`layers.${i}.feed_forward.w2.weight`] = tensor([32, 96]);
      weights[`layers.${i}.attention_norm.weight`] = tensor([32]);
      weights[`layers.${i}.ffn_norm.weight`] = tensor([32]);
    }
    await writeSafetensors(join(narrow, 'consolidated.00.pth'), weights);
    assertInputError(egretSync('generate', '--model', narrow, '--clip', CLIP, '--adapter', ADAPTER, ...ask),
      /checkpoint-19\.pth: 'model\.module\.adapter_modality_embedding\.weight' is \[2,64\], expected \[2,32\] for the LLaMA's width 32/);

    // CLIP files that are no OpenAI CLIP: an image, the LaVIN checkpoint itself.
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 2), '--clip', join(DIR, 'images/a0.png'), '--adapter', ADAPTER, ...ask), /a0\.png: not a checkpoint/);
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 2), '--clip', ADAPTER, '--adapter', ADAPTER, ...ask), /no tensor 'visual\.conv1\.weight': not an OpenAI CLIP/);

    // A TorchScript archive whose data.pkl would run code (test/fixtures/lavin-bad/make.py): refused, nothing runs.
    const run = spawnSync(process.execPath,
      [join(ROOT, 'bin/egret'), 'generate', '--model', LLAMA, '--clip', join(ROOT, 'test/fixtures/lavin-bad/jit-runs-code.pt'), '--adapter', ADAPTER, ...ask],
      { cwd: dir, encoding: 'utf8' });
    assertInputError({ code: run.status, stdout: run.stdout, stderr: run.stderr }, /jit-runs-code\.pt: .*refusing to call builtins\.exec/);
    assert.equal(existsSync(join(dir, 'egret-pwned')), false);

    // Adapters without the saved args (the router temperature is recorded nowhere else).
    const source = await openCheckpointFile(ADAPTER);
    const bare: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const { name, shape } of source.list()) if (name.startsWith('model.')) bare[name] = { dtype: 'F32', shape, data: await source.readFloat32(name) };
    await source.close();
    const noArgs = join(dir, 'no-args.safetensors');
    await writeSafetensors(noArgs, bare);
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 4), '--adapter', noArgs, ...ask), /no-args\.safetensors: no saved 'args'/);

    // Saved args that contradict the tensors, or lack what no tensor records; a CLIP config.json that contradicts its file.
    const checkpoint = await openCheckpointFile(ADAPTER);
    const model: Record<string, SavedValue> = {};
    for (const { name, shape } of checkpoint.list()) {
      if (name.startsWith('model.')) model[name.slice('model.'.length)] = savedTensor('F32', shape, await checkpoint.readFloat32(name));
    }
    await checkpoint.close();
    const withArgs = async (name: string, args: Record<string, SavedValue>) => {
      const path = join(dir, name);
      await torchSave(path, { model: { kind: 'ordered', entries: model }, epoch: 0, args: { kind: 'namespace', fields: args } });
      return path;
    };
    const good = { adapter_type: 'attn', visual_adapter_type: 'router', adapter_dim: 8, hidden_proj: 128, temperature: 10, n_prompt: 6, adapter_scale: 1 };
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 4), '--adapter', await withArgs('dim16.pth', { ...good, adapter_dim: 16 }), ...ask),
      /dim16\.pth: args\.adapter_dim = 16 contradicts 'model\.module\.layers\.0\.adapter_attn\.conv_A\.weight' \(8\)/);
    const { temperature: _, ...noTemperature } = good;
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 4), '--adapter', await withArgs('no-t.pth', noTemperature), ...ask),
      /no-t\.pth: the checkpoint's saved args have no 'temperature'/);
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 4), '--adapter', await withArgs('n5.pth', { ...good, n_prompt: 5 }), ...ask),
      /args\.n_prompt = 5 is not a positive divisor of the CLIP tower's 24 blocks/);
    // The same tensors with consistent args load (what the cases above change is all that is wrong with them).
    const ok = await egret('generate', ...LAVIN.slice(0, 4), '--adapter', await withArgs('ok.pth', good), '--threads', '1', ...ask);
    assert.equal(ok.code, 0, ok.stderr);
    const clipDir = join(dir, 'clip');
    mkdirSync(clipDir);
    copyFileSync(CLIP, join(clipDir, 'ViT-tiny.pt'));
    writeFileSync(join(clipDir, 'config.json'), JSON.stringify({ heads: 4, layers: 12 }));
    assertInputError(egretSync('generate', ...LAVIN.slice(0, 2), '--clip', join(clipDir, 'ViT-tiny.pt'), '--adapter', ADAPTER, ...ask),
      /config\.json: layers 12 contradicts .*ViT-tiny\.pt's tensors \(24\)/);

    // Half a LaVIN, or a LaVIN option on another model.
    assertInputError(egretSync('generate', '--model', LLAMA, '--clip', CLIP, ...ask), /needs both --clip FILE and --adapter FILE/);
    assertInputError(egretSync('generate', '--model', LLAMA, '--official-positions', ...ask), /--official-positions applies to LaVIN models only/);
    // LaVIN takes one image.
    assertInputError(egretSync('generate', ...LAVIN, '--ids', '1,-200,5,-200', '--image', join(DIR, 'images/a0.png'), '--image', join(DIR, 'images/a1.png'), '--max-new-tokens', '1'),
      /LaVIN takes one image per prompt/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
