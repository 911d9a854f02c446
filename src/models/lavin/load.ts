/**
 * LaVIN (luogen1996/LaVIN): a frozen Meta LLaMA with an MM-Adapter before attention in every block, a frozen
 * OpenAI CLIP ViT with router adapters, and a modality token that selects the adapters' routes.
 *
 * The modality token is row 0 of LaVIN's sequence, and no other row attends to it (lavin/model.py's mask), so its
 * hidden states — and the routes every layer computes from them — depend only on the modality. egret computes both
 * modalities' routes and row-0 logits once, at load, and runs prompts without the token: each sequence takes its
 * modality's routes as its `conditioning`, and its tokens keep the positions they have in LaVIN's sequence (BOS at 1).
 */
import { InputError } from '../../errors.js';
import type { Graph, Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import { WeightScope } from '../../graph/weights.js';
import { openCheckpointFile, type TensorSource } from '../../io/checkpoint.js';
import { Session } from '../../runtime/session.js';
import { IMAGE_TOKEN_INDEX } from '../../text/image-prompt.js';
import { loadTokenizer } from '../../text/load.js';
import type { RGBImage } from '../../vision/image.js';
import { preprocessLavin } from '../../vision/pipelines.js';
import type { ChatModel, LoadModelOptions } from '../index.js';
import type { LlamaConfig } from '../llama/config.js';
import { CausalLM, openLlama, type BuildOptions, type LanguageModelWeights } from '../llama/load.js';
import type { PreparedPrompt } from '../prompt.js';
import { encodeImages, visualChatModel } from '../visual-prompt.js';
import { OPENAI_CLIP_NAMING } from '../clip.js';
import { lavinVisionFlops } from '../flops.js';
import { checkAdapter, mixtureAdapter, routeWeights } from './adapter.js';
import { LAVIN_MODULES, lavinSettings, type LavinSettings } from './settings.js';
import { lavinClipConfig, lavinVisionGraph } from './vision.js';

/** What makes a Meta LLaMA directory a LaVIN model (CONTRACT.md "Models"). */
export interface LavinFiles {
  /** OpenAI CLIP: a state dict or OpenAI's TorchScript archive (ViT-L-14.pt). */
  clip: string;
  /** The LaVIN checkpoint (checkpoint-N.pth). */
  adapter: string;
  /**
   * Decode at the official code's positions: lavin/generator.py feeds generated token j at position j, one less
   * than training put it (the prompt's tokens sit at 1..L after the modality token). Default: training's j + 1.
   */
  officialPositions?: boolean;
}

/** Both modalities' routes and row-0 logits: index 0 text-only, 1 image (the modality embedding's rows). */
export interface ModalityRows {
  routes: [Float32Array, Float32Array];
  logits: [Float32Array, Float32Array];
}

/**
 * The LLaMA blocks' MM-Adapters as a decoder-graph transformation. The route of layer i comes from the sequence's
 * `conditioning` [batch, layers · 2]; `route_probe.i` is what layer i's router makes of row 0 of the call (the
 * modality token, when modalityRows runs it alone).
 */
function llamaAdapters(source: TensorSource, settings: LavinSettings, layers: number): (x: Value, layer: number) => Value {
  const routes = new WeakMap<Graph, Value>();
  return (x, layer) => {
    const graph = x.graph;
    let all = routes.get(graph);
    if (!all) {
      all = op.reshape(graph.input('conditioning', 'float32', ['batch', layers * 2]), [0, layers, 2]);
      routes.set(graph, all);
    }
    const scope = new WeightScope(graph, source, settings.prefix + LAVIN_MODULES.llm(layer));
    graph.output(routeWeights(scope, op.slice(x, [1], [0], [1]), settings.llm), `route_probe.${layer}`);
    return mixtureAdapter(scope, x, op.slice(all, [1], [layer], [layer + 1]), settings.llm);
  };
}

/**
 * Runs each modality token alone at position 0, as LaVIN's prefill row 0 (it attends only to itself). Layer i's route
 * depends only on layers < i, so a pass that feeds correct routes for layers < i gets layer i's right: layers + 1
 * single-token passes give every route and, in the last, the row's logits.
 */
async function modalityRows(lm: CausalLM, table: Float32Array): Promise<ModalityRows> {
  const { layers, vocab } = lm.config;
  const routes: [Float32Array, Float32Array] = [new Float32Array(layers * 2).fill(0.5), new Float32Array(layers * 2).fill(0.5)];
  for (let pass = 0; ; pass++) {
    const { logits, outputs } = await lm.decoder.forward(lm.decoder.newCache(2), {
      embeds: table, seq: 1, counts: [1, 1], positions: [[0], [0]], logitRows: [[0], [0]], conditioning: routes,
    });
    if (pass === layers) return { routes, logits: [logits.slice(0, vocab), logits.slice(vocab, 2 * vocab)] };
    const probe = outputs[`route_probe.${pass}`]!.data as Float32Array;
    routes.forEach((r, m) => r.set(probe.subarray(m * 2, m * 2 + 2), pass * 2));
  }
}

/** Refuses a checkpoint whose LLaMA adapters do not fit `config` (widths, one adapter per block). */
function checkLlamaAdapters(source: TensorSource, settings: LavinSettings, config: LlamaConfig, where: string): void {
  for (let i = 0; i < config.layers; i++) checkAdapter(source, settings.prefix + LAVIN_MODULES.llm(i), settings.llm, `LLaMA block ${i}`);
  if (source.has(`${settings.prefix}layers.${config.layers}.adapter_attn.conv_A.weight`)) {
    throw new InputError(`${where}: adapters for more than the LLaMA's ${config.layers} blocks ('${settings.prefix}layers.${config.layers}.adapter_attn.*')`);
  }
  const proj = `${settings.prefix}adapter_proj.conv_B.weight`;
  const shape = source.info(proj).shape;
  if (shape[0] !== config.hidden || shape[1] !== settings.projectorHidden) {
    throw new InputError(`${where}: '${proj}' is [${shape}], expected [${config.hidden},${settings.projectorHidden}] for the LLaMA's width ${config.hidden}`);
  }
}

/**
 * LaVIN's decoder: the LLaMA of `weights` with the MM-Adapters of `adapters` (checked against it), and both
 * modalities' routes and row-0 logits.
 */
export async function buildLavinDecoder(weights: LanguageModelWeights, adapters: TensorSource, settings: LavinSettings, where: string, opts: BuildOptions): Promise<{ lm: CausalLM; modality: ModalityRows }> {
  checkLlamaAdapters(adapters, settings, weights.config, where);
  const table = await adapters.readFloat32(`${settings.prefix}adapter_modality_embedding.weight`);
  const lm = await CausalLM.build(weights, { ...opts, attentionInput: llamaAdapters(adapters, settings, weights.config.layers) });
  try {
    return { lm, modality: await modalityRows(lm, table) };
  } catch (err) {
    await lm.dispose();
    throw err;
  }
}

/** Loads a LaVIN model: the LLaMA in `dir` (Meta or HF layout) with `files`' CLIP and adapters; `options` gives the load options. */
export async function loadLavin(dir: string, files: LavinFiles, options: () => Promise<LoadModelOptions & BuildOptions>): Promise<ChatModel> {
  const sources: TensorSource[] = [];
  const open = async (path: string) => {
    const source = await openCheckpointFile(path);
    sources.push(source);
    return source;
  };
  let lm: CausalLM | undefined;
  let vision: Session | undefined;
  try {
    const weights = await openLlama(dir);
    sources.push(weights.source);
    // Keyed (for the cache) once the directory is known to be a model.
    const opts = await options();
    const clip = await open(files.clip);
    const adapters = await open(files.adapter);
    const clipConfig = await lavinClipConfig(clip, files.clip);
    const settings = lavinSettings(adapters, files.adapter, { llmWidth: weights.config.hidden, clipWidth: clipConfig.hidden, clipLayers: clipConfig.layers });
    for (let i = 0; i < clipConfig.layers; i++) {
      checkAdapter(adapters, settings.prefix + LAVIN_MODULES.clip(i), settings.clip, `CLIP block ${i}`);
    }
    const tokenizer = await loadTokenizer(dir);
    vision = await Session.fromGraph(lavinVisionGraph(clip, adapters, clipConfig, settings), { threads: opts.threads });
    let modality: ModalityRows;
    ({ lm, modality } = await buildLavinDecoder(weights, adapters, settings, files.adapter, opts));
    const mlp = clip.info(`visual.${OPENAI_CLIP_NAMING.layer(0)}.${OPENAI_CLIP_NAMING.fc1}.weight`).shape[0]!;
    const flopsPerImage = lavinVisionFlops(clipConfig, mlp, settings.clip, settings.visualTokens, settings.projectorHidden, weights.config.hidden);
    return lavinChatModel(lm, vision, tokenizer, modality, clipConfig.imageSize, flopsPerImage, files.officialPositions ?? false);
  } catch (err) {
    await Promise.all([lm?.dispose(), vision?.dispose()]);
    throw err;
  } finally {
    // The sessions and the embedding table hold their own copies of the weights now.
    await Promise.all(sources.map((s) => s.close()));
  }
}

function lavinChatModel(lm: CausalLM, vision: Session, tokenizer: ChatModel['tokenizer'], modality: ModalityRows, size: number, flopsPerImage: number, officialPositions: boolean): ChatModel {
  /** Visual tokens of new images, all through the tower in one run; each image routes on its own features. */
  const encode = (images: readonly RGBImage[]) => encodeImages(vision, images, size, (img, s) => preprocessLavin(img, s).pixelValues, 'visual_tokens');

  return visualChatModel({
    family: 'lavin',
    lm,
    tokenizer,
    encode,
    flopsPerImage,
    defaultTemplate: 'lavin_sqa',
    checkIds(ids) {
      const slots = ids.filter((id) => id === IMAGE_TOKEN_INDEX).length;
      if (slots > 1) throw new InputError(`LaVIN takes one image per prompt, the prompt has ${slots} image placeholders`);
    },
    finish(prompt: PreparedPrompt, images): PreparedPrompt {
      const m = images.length > 0 ? 1 : 0;
      // LaVIN's sequence: the modality token at 0, then the prompt from BOS at 1.
      const positions = prompt.positions.map((p) => p + 1);
      const last = positions.length;
      return {
        ...prompt,
        positions,
        conditioning: modality.routes[m],
        leadingLogits: modality.logits[m],
        ...(officialPositions ? { nextPosition: last } : {}),
      };
    },
    disposeVision: () => vision.dispose(),
  });
}
