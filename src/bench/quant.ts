/**
 * Suite `quant` (issue #3, not quick: loads the `llama` suite's 2.7 GB random model three times): what --dtype
 * q8 / q4 cost in accuracy against fp32, on test/fixtures/tiny-llama and on the random LLaMA with 7B's layer
 * shapes (random-llama.ts).
 *
 * The text: a fixed prompt of 16 ids (i · 7919 mod vocab) followed by the fp32 model's own greedy continuation
 * of 48 tokens. Each dtype computes the logits of every position of that text in one prefill; reported: max and
 * mean |logit − fp32 logit| over all positions and the vocabulary (fp32's logit standard deviation beside them
 * for scale), the share of positions whose argmax equals fp32's, and the perplexity of the continuation
 * (exp of the mean negative log-likelihood of its 48 tokens) with its change against fp32.
 *
 * Options: --layers=N of the random model (default 2), --skip-random (the fixture only).
 */
import { argmax, negativeLogLikelihood } from '../generate/sampling.js';
import type { ComputeDtype } from '../models/linear.js';
import { CausalLM, openLlama } from '../models/llama/load.js';
import type { Report, Suite, SuiteContext } from './harness.js';
import { promptIds } from './llama.js';
import { LLAMA_7B_LAYER, randomLlamaDir } from './random-llama.js';

const FIXTURE = 'test/fixtures/tiny-llama';
const PROMPT = 16;
const CONTINUATION = 48;
const DTYPES: readonly ComputeDtype[] = ['fp32', 'q8', 'q4'];

/** The prompt and the fp32 model's greedy continuation of it. */
async function greedyText(lm: CausalLM): Promise<number[]> {
  const ids = promptIds(PROMPT, lm.config.vocab);
  const cache = lm.decoder.newCache(1);
  let { logits } = await lm.decoder.forward(cache, { embeds: lm.embed(ids), seq: ids.length, counts: [ids.length], positions: [ids.map((_, i) => i)], logitRows: [[ids.length - 1]] });
  for (let t = 0; t < CONTINUATION; t++) {
    ids.push(argmax(logits));
    if (t + 1 < CONTINUATION) ({ logits } = await lm.decoder.forward(cache, { embeds: lm.embed(ids.slice(-1)), seq: 1, counts: [1], positions: [[ids.length - 1]], logitRows: [[0]] }));
  }
  return ids;
}

/** Logits of every position of `ids`, [ids.length, vocab]. */
async function allLogits(lm: CausalLM, ids: readonly number[]): Promise<Float32Array> {
  const positions = ids.map((_, i) => i);
  return (await lm.decoder.forward(lm.decoder.newCache(1), { embeds: lm.embed(ids), seq: ids.length, counts: [ids.length], positions: [positions], logitRows: [positions] })).logits;
}

/** Perplexity of ids[PROMPT..] given the logits of every position (row t predicts ids[t + 1]). */
function continuationPerplexity(logits: Float32Array, ids: readonly number[], vocab: number): number {
  let nll = 0;
  for (let t = PROMPT - 1; t < ids.length - 1; t++) {
    nll += negativeLogLikelihood(logits.subarray(t * vocab, (t + 1) * vocab), ids[t + 1]!);
  }
  return Math.exp(nll / (ids.length - PROMPT));
}

function compare(logits: Float32Array, reference: Float32Array, vocab: number) {
  let max = 0, sum = 0, agree = 0;
  for (let i = 0; i < logits.length; i++) {
    const d = Math.abs(logits[i]! - reference[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  const rows = logits.length / vocab;
  for (let r = 0; r < rows; r++) if (argmax(logits.subarray(r * vocab, (r + 1) * vocab)) === argmax(reference.subarray(r * vocab, (r + 1) * vocab))) agree++;
  return { max, mean: sum / logits.length, agree: agree / rows };
}

function standardDeviation(a: Float32Array): number {
  let mean = 0;
  for (const v of a) mean += v;
  mean /= a.length;
  let s = 0;
  for (const v of a) s += (v - mean) ** 2;
  return Math.sqrt(s / a.length);
}

async function measureModel(ctx: SuiteContext, label: string, dir: string): Promise<Report['rows']> {
  const rows: Report['rows'] = [];
  let text: number[] = [];
  let reference: Float32Array = new Float32Array(0);
  let referencePpl = 0;
  for (const dtype of DTYPES) {
    ctx.log(`${label}: ${dtype}`);
    const lm = await CausalLM.build(await openLlama(dir), { dtype, threads: ctx.threads });
    try {
      const vocab = lm.config.vocab;
      if (dtype === 'fp32') text = await greedyText(lm);
      const logits = await allLogits(lm, text);
      const ppl = continuationPerplexity(logits, text, vocab);
      if (dtype === 'fp32') {
        reference = logits;
        referencePpl = ppl;
      }
      const err = compare(logits, reference, vocab);
      rows.push({
        model: label, dtype, max_abs: err.max, mean_abs: err.mean, logit_std: standardDeviation(reference),
        agree: 100 * err.agree, ppl, ppl_change: 100 * (ppl / referencePpl - 1),
      });
    } finally {
      await lm.dispose();
    }
  }
  return rows;
}

async function run(ctx: SuiteContext): Promise<Report> {
  const layers = ctx.options.layers === undefined ? 2 : Number(ctx.options.layers);
  if (!Number.isInteger(layers) || layers < 1) throw new Error('--layers needs a positive integer');
  const rows = await measureModel(ctx, 'tiny-llama (fixture)', FIXTURE);
  if (ctx.options['skip-random'] !== true) {
    const dir = await randomLlamaDir({ ...LLAMA_7B_LAYER, layers, vocab: 32000 }, ctx.log);
    rows.push(...await measureModel(ctx, `random 7B-shaped, ${layers} layers`, dir));
  }
  return {
    title: 'logit error and perplexity of q8 / q4 (MatMulNBits, block 32, symmetric) against fp32',
    columns: [
      { key: 'model', label: 'model' },
      { key: 'dtype', label: 'dtype' },
      { key: 'max_abs', label: 'max |Δlogit|', digits: 4 },
      { key: 'mean_abs', label: 'mean |Δlogit|', digits: 5 },
      { key: 'logit_std', label: 'fp32 logit std', digits: 3 },
      { key: 'agree', label: 'argmax = fp32 %', digits: 1 },
      { key: 'ppl', label: 'perplexity', digits: 3 },
      { key: 'ppl_change', label: 'Δppl %', digits: 2 },
    ],
    rows,
    notes: [
      `text: ${PROMPT} fixed prompt ids (i·7919 mod vocab) + the fp32 model's greedy continuation of ${CONTINUATION} tokens; logits of all ${PROMPT + CONTINUATION} positions in one prefill`,
      `errors over every position and vocabulary entry; perplexity of the ${CONTINUATION} continuation tokens (fp32 is low by construction: it chose them)`,
      'every linear layer and the LM head are quantised (the embedding table stays fp32); activations are quantised to int8 inside MatMulNBits (accuracy level 4)',
    ],
  };
}

export const quantSuite: Suite = {
  name: 'quant',
  description: 'q8 / q4 logit error and perplexity change against fp32, on the tiny-llama fixture and a random 7B-shaped model',
  quick: false,
  options: {
    layers: '=N decoder layers of the random 7B-shaped model (default 2)',
    'skip-random': 'only the tiny-llama fixture',
  },
  run,
};
