/**
 * The lab's settings: the full run (docs/LAB.md's figures, the models that ship) and the quick one (CI), which
 * scores the full run's MRA and low-resolution models when it finds them (shipped or cached) on fewer held-out
 * images, and otherwise trains small ones of its own.
 */
import type { LabShape } from './models.js';
import type { MraLabPlan } from './mra-lab.js';

const TOKENIZER = { seed: 0, count: 2000, vocab: 512 };
/**
 * The low-resolution ViT that MRA and the LLaVA-1.5 baseline share (32 × 32 = 1024 visual tokens at 224 px, the size
 * at which the task makes the code unreadable; LLaVA-HR-1024 has 1024 too), and their LLaMA.
 */
const VIT = { width: 64, layers: 4, heads: 4, patch: 7, imageSize: 224 };
const LLM = { width: 128, layers: 3, heads: 4, intermediate: 344 };
// The low-resolution model and MRA's main stage: the first third of the steps ease the print from 5× its size down
// to the task's, with the reading head's per-cell character targets weighing 10× the answer's and the attention aid
// pointing the last layer's first head at each character's token. Without these and MRA's stage 0, training sat at
// the character prior (right length and alphabet, not the code) for 900+ steps.
const TRAIN = { seed: 0, steps: 1800, batchSize: 4, lr: 1e-3, warmup: 100, ease: 1, easeSteps: 600, reading: 10, attention: 1 };
/**
 * MRA's stage 0: its ConvNeXt alone learns to read on 256-px crops of code sheets (16 crops a step from 32 sheets of
 * 150 codes asked, ~133 placed at 1024 px: at 48 a sheet, a stride-8 reading head read 10 points fewer characters at
 * equal steps). The print reaches the task's size at step 300 and the learning rate stays high long after: with 1000
 * steps, easing to step 400, the last-stage head read 16 % of the characters at step 550; with these, 42 % at step
 * 1000 and 67 % at 1750, still climbing (docs/LAB.md, "Status").
 */
const PRETRAIN = { steps: 3000, sheets: 32, codes: 150, crops: 16, crop: 256, lr: 2e-3, warmup: 50, ease: 1, easeSteps: 300 };

export const FULL_PLAN: MraLabPlan = {
  tokenizer: TOKENIZER,
  // ConvNeXt at LLaVA-HR-1024's 1024 px: a 32 × 32 last-stage map, one cell per ViT patch. Stage 0 read about twice
  // as many characters at 1024 px as at 768 (8–13 px caps instead of 6–10), and twice the first stage's width of
  // 16 helped (docs/LAB.md, "Status").
  // The whole model trains around stage 0's ConvNeXt (trained on, it lost what stage 0 taught it: docs/LAB.md,
  // ninth session) and its MR-Adapters start as the identity (LLaVA-HR's init). The decoder's read-out is
  // `egret lab readout`'s recipe (docs/LAB.md, twelfth session): what it is slow to learn is each answer row's place
  // in the code, so the place is handed to those rows as a crutch that fades out by step 800, while the place aid
  // tells layer 0's rows to hold it themselves; the attention aid gives each of layer 1's 4 heads its own places in
  // the code (layer 1, so that its queries can use the place); the visual tokens are kept at an rms of 0.5 (read
  // past layer 0, a fresh projector's 0.05 drowns) and the reading head starts as stage 0's (fresh, it sat at chance
  // for 250 steps; thirteenth session). The low-resolution model keeps the last-layer aid: it cannot read print
  // under 3 px with any aid, and takes 1.8 hours to train again.
  mra: {
    shape: { vit: VIT, llm: LLM, vocab: TOKENIZER.vocab, imageSize: 1024, convnext: { depths: [1, 1, 1, 1], dims: [32, 64, 128, 128] } },
    train: {
      ...TRAIN, freezeConvnext: true, identityAdapters: true, attentionHeads: LLM.heads, attentionLayer: 1,
      placeCrutchUntil: 800, placeAid: 300, positionLayer: 0, readingFromStageZero: true, visualRms: 0.5, pretrain: PRETRAIN,
    },
  },
  lowres: { shape: { vit: VIT, llm: LLM, vocab: TOKENIZER.vocab }, train: TRAIN },
  // The same ViT at MRA's 1024 px with 16-px patches: 64 × 64 = 4096 visual tokens (7-px patches would be 21 316).
  naive: { vit: { ...VIT, patch: 16, imageSize: 1024 }, llm: LLM, vocab: TOKENIZER.vocab },
  heldOutSeed: 1_000_000,
  evalCount: 200,
  calibrationSeed: 2_000_000,
  calibration: 16,
  eta: 0.01,
};

const QUICK_VIT = { width: 32, layers: 4, heads: 2, patch: 8, imageSize: 96 };
const QUICK_LLM = { width: 64, layers: 2, heads: 2, intermediate: 172 };
const QUICK_TRAIN = { seed: 0, steps: 60, batchSize: 2, lr: 2e-3, warmup: 10, ease: 1, easeSteps: 30, reading: 10, attention: 1 };
const QUICK_LOWRES: LabShape = { vit: QUICK_VIT, llm: QUICK_LLM, vocab: TOKENIZER.vocab };

/** Small models of the quick run's own, used when the full run's are not at hand (they cannot read the codes). */
export const QUICK_PLAN: MraLabPlan = {
  ...FULL_PLAN,
  mra: { shape: { ...QUICK_LOWRES, imageSize: 384, convnext: { depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] } }, train: QUICK_TRAIN },
  lowres: { shape: QUICK_LOWRES, train: QUICK_TRAIN },
  naive: { vit: { ...QUICK_VIT, patch: 8, imageSize: 384 }, llm: QUICK_LLM, vocab: TOKENIZER.vocab },
  evalCount: 50,
  calibration: 8,
};
