/**
 * Suite `vtw` (issue #5, not quick: a 0.4 GB random model in os.tmpdir(), a minute or two): LLaVA-1.5-7B's token
 * proportions — 32 layers, 35 system tokens, 576 visual tokens, 25 question tokens — on narrower layers (hidden
 * 512, intermediate 1376, 8 heads; --hidden=N scales them), all contenders interleaved in the same rounds:
 *
 *   ttft      time to first token (the prefill of one prompt, fresh cache) without a method, with VTW at K = L/2,
 *             and with FastV K=2 R=50 % (its ranking pass included); each method's time saving against its FLOPs
 *             saving (decoderFlops over the per-layer token counts). Goal: VTW's time saving ≥ 90 % of its FLOPs
 *             saving.
 *   decode    one decode step over the prompt's cache (~636 tokens) with and without VTW, and the KV-cache bytes
 *             the withdrawn layers do not hold.
 *
 * Options: --hidden=N (default 512; intermediate = 2.6875·N rounded to 32, heads = N/64), --layer=K (default L/2).
 */
import { decoderFlops, promptLayerTokens } from '../models/flops.js';
import { CausalLM, openLlama } from '../models/llama/load.js';
import { prefillCall, type PreparedPrompt } from '../models/prompt.js';
import { applyFastV } from '../methods/fastv.js';
import { withdrawVisualTokens } from '../methods/vtw.js';
import type { KVCache } from '../runtime/kv-cache.js';
import { interleave, pairedRatio, type Report, type Suite, type SuiteContext } from './harness.js';
import { randomLlamaDir } from './random-llama.js';

const LAYERS = 32;
const SYSTEM = 35;
const VISUAL = 576;
const QUESTION = 25;
const VOCAB = 4000;
const TIME_GOAL = 0.9;

/** Prompt embeddings: text rows from the embedding table, visual rows random (as a projector's output would be). */
function prompt(lm: CausalLM): PreparedPrompt {
  const n = SYSTEM + VISUAL + QUESTION;
  const ids = Array.from({ length: n }, (_, i) => (i * 7919) % VOCAB);
  const embeds = lm.embed(ids);
  let x = 12345;
  for (let i = SYSTEM * lm.config.hidden; i < (SYSTEM + VISUAL) * lm.config.hidden; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    embeds[i] = (x / 2 ** 32 - 0.5) * 0.05;
  }
  const visual = Array.from({ length: VISUAL }, (_, i) => SYSTEM + i);
  return { embeds, positions: ids.map((_, i) => i), textIds: ids.filter((_, i) => i < SYSTEM || i >= SYSTEM + VISUAL), visual };
}

/** A decode step over `cache` (the prompt's), rewound afterwards so that every call is the same. */
function stepper(lm: CausalLM, cache: KVCache, position: number): () => Promise<unknown> {
  const embeds = lm.embed([7]);
  return async () => {
    await lm.decoder.forward(cache, { embeds, seq: 1, counts: [1], positions: [[position]], logitRows: [[0]] });
    cache.lengths.forEach((l) => (l[0]! -= 1));
  };
}

export const vtwSuite: Suite = {
  name: 'vtw',
  description: 'VTW and FastV on LLaVA-1.5-7B token proportions: time to first token and decode step vs FLOPs',
  quick: false,
  options: { hidden: 'layer width (default 512)', layer: 'VTW layer K (default L/2 = 16)' },
  async run(ctx: SuiteContext): Promise<Report> {
    const hidden = Number(ctx.options['hidden'] ?? 512);
    const intermediate = Math.round((hidden * 2.6875) / 32) * 32;
    const dir = await randomLlamaDir({ hidden, intermediate, heads: hidden / 64, layers: LAYERS, vocab: VOCAB }, ctx.log);
    const weights = await openLlama(dir);
    const lm = await CausalLM.build(weights, { threads: ctx.threads });
    await weights.source.close();
    const k = Number(ctx.options['layer'] ?? LAYERS / 2);
    const base = prompt(lm);
    const vtw = withdrawVisualTokens(base, k, LAYERS);
    const fastvPlan = (await applyFastV(lm.decoder, [base], { layer: 2, ratio: 0.5 }))[0]!;
    const flops = (p: PreparedPrompt) => {
      const t = promptLayerTokens(lm.decoder, p);
      return decoderFlops(lm.config, t, t, 1);
    };
    const prefill = (p: PreparedPrompt) => () => lm.decoder.forward(lm.decoder.newCache(1), prefillCall(lm.decoder, [p]));
    ctx.log(`vtw: timing prefills (${base.positions.length} tokens, ${LAYERS} layers, hidden ${hidden})`);
    const ttft = await interleave({
      none: prefill(base),
      vtw: prefill(vtw),
      // FastV's time includes its ranking pass (layers < K on the whole prompt).
      fastv: async () => prefill((await applyFastV(lm.decoder, [base], { layer: 2, ratio: 0.5 }))[0]!)(),
    }, { warmup: ctx.warmup ?? 1, reps: ctx.reps ?? 5, pauseMs: 20 });

    const caches = { none: lm.decoder.newCache(1), vtw: lm.decoder.newCache(1) };
    await lm.decoder.forward(caches.none, prefillCall(lm.decoder, [base]));
    await lm.decoder.forward(caches.vtw, prefillCall(lm.decoder, [vtw]));
    const n = base.positions.length;
    ctx.log('vtw: timing decode steps');
    const decode = await interleave({ none: stepper(lm, caches.none, n), vtw: stepper(lm, caches.vtw, n) }, { warmup: 3, reps: ctx.reps ? ctx.reps * 4 : 20, pauseMs: 5 });
    const heldBytes = (c: KVCache) => c.lengths.reduce((s, l) => s + l[0]! * lm.config.kvHeads * lm.config.headDim * 2 * 4, 0);
    await lm.dispose();

    const baseFlops = flops(base);
    const row = (name: string, key: 'none' | 'vtw' | 'fastv', f: number) => {
      const timeSaving = key === 'none' ? 0 : 1 - pairedRatio(ttft, key, 'none').median;
      const flopSaving = 1 - f / baseFlops;
      return {
        method: name, ttft_ms: ttft.times[key].median, gflop: f / 1e9, flop_saving: flopSaving, time_saving: timeSaving,
        saving_ratio: key === 'none' ? null : timeSaving / flopSaving,
      };
    };
    const rows = [row('none', 'none', baseFlops), row(`VTW K=${k}`, 'vtw', flops(vtw)), row('FastV K=2 R=50%', 'fastv', flops(fastvPlan))];
    const vtwRatio = rows[1]!.saving_ratio as number;
    const decodeSaving = 1 - pairedRatio(decode, 'vtw', 'none').median;
    return {
      title: `time to first token and decode step, ${LAYERS} layers × hidden ${hidden}, ${SYSTEM}+${VISUAL}+${QUESTION} tokens`,
      columns: [
        { key: 'method' }, { key: 'ttft_ms', label: 'TTFT ms (median)', digits: 1 }, { key: 'gflop', label: 'GFLOP', digits: 1 },
        { key: 'flop_saving', label: 'FLOPs saved', digits: 3 }, { key: 'time_saving', label: 'time saved', digits: 3 },
        { key: 'saving_ratio', label: 'time/FLOPs saving', digits: 2 },
      ],
      rows,
      notes: [
        `VTW time saving / FLOPs saving = ${vtwRatio.toFixed(2)} (goal ≥ ${TIME_GOAL}): ${vtwRatio >= TIME_GOAL ? 'met' : 'NOT met'}`,
        `FastV's time includes its ranking pass over layers 0–1 (${((2 / LAYERS) * 100).toFixed(0)} % of a prefill); its FLOPs column does not`,
        `decode step at ${n} tokens of context: ${decode.times.none.median.toFixed(2)} ms without, ${decode.times.vtw.median.toFixed(2)} ms with VTW (${(decodeSaving * 100).toFixed(1)} % faster)`,
        `KV cache held after the prompt: ${(heldBytes(caches.none) / 2 ** 20).toFixed(1)} MiB without, ${(heldBytes(caches.vtw) / 2 ** 20).toFixed(1)} MiB with VTW (${((1 - heldBytes(caches.vtw) / heldBytes(caches.none)) * 100).toFixed(1)} % saved)`,
      ],
      details: { ttft, decode },
    };
  },
};
