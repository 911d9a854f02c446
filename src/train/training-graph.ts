/**
 * One ONNX graph per training step: the model's forward pass, the backward pass for its trainable weights, and
 * the AdamW update (with optional global-norm clipping and accumulation over micro-batches).
 *
 * The forward graph is built as for inference, with the weights as initializers; the weights whose names
 * `trainable` accepts become graph inputs and every other weight stays a frozen initializer inside the model. The
 * graph's interface, for each trainable tensor NAME (names are trainingNames(NAME)):
 *   inputs   NAME, adam_m.NAME, adam_v.NAME (and grad_acc.NAME when accumulating)
 *   outputs  new.NAME, new.adam_m.NAME, new.adam_v.NAME (and new.grad_acc.NAME; grad.NAME on request)
 * and the shared scalars:
 *   inputs   lr, step (the update's 1-based count), both of the weights' float type;
 *            apply_update (bool, when accumulating): whether this micro-batch ends the accumulation
 *   outputs  loss, grad_norm (global 2-norm of the gradient the update uses)
 * plus the forward graph's own inputs (and its outputs, kept).
 */
import { gradients } from '../graph/autodiff.js';
import { GraphError, type Graph, type Initializer, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { adamwScalars, adamwUpdate, clipByGlobalNorm, decaysByDefault, globalNorm, type AdamWOptions } from './adamw.js';

export interface TrainingOptions {
  /**
   * Which weights train, by initializer name (as WeightScope names them: the checkpoint's names); every other
   * weight stays frozen. Only floating-point initializers are asked (graph constants have names like 'scalar_3').
   */
  trainable: (name: string) => boolean;
  optimizer?: AdamWOptions;
  /** Clip the gradient to this global 2-norm before the update (torch clip_grad_norm_). */
  clipGradNorm?: number;
  /**
   * Micro-batches per update (default 1). Each micro-batch's gradient is divided by this count and summed, as
   * LaVIN's engine.py divides the loss by accum_iter; the update runs on the last one.
   */
  accumulation?: number;
  /** Also output each micro-batch's gradient as grad.NAME (before scaling and clipping). */
  gradOutputs?: boolean;
}

/** A trainable tensor of a training graph. */
export interface TrainableTensor {
  name: string;
  type: 'float32' | 'float64';
  shape: readonly number[];
  /** Whether AdamW's weight decay applies to it. */
  decays: boolean;
  /** The weight's values before training (what the model's initializer held). */
  initial: Initializer['bytes'];
  /** Whether the loss depends on it; a tensor it does not depend on is never updated (torch skips grad None). */
  reachesLoss: boolean;
}

export interface TrainingGraph {
  graph: Graph;
  tensors: TrainableTensor[];
  accumulation: number;
  gradOutputs: boolean;
  /** Whether the graph reads a dropout seed (a DropoutNoise input named dropout_seed). */
  dropout: boolean;
}

/** The graph's input and output names for the trainable tensor `name`. */
export function trainingNames(name: string) {
  return {
    param: name, m: `adam_m.${name}`, v: `adam_v.${name}`, acc: `grad_acc.${name}`,
    newParam: `new.${name}`, newM: `new.adam_m.${name}`, newV: `new.adam_v.${name}`, newAcc: `new.grad_acc.${name}`,
    grad: `grad.${name}`,
  };
}

/**
 * Turns the forward graph of `loss` (a float scalar) into its training graph, in place: see the module comment
 * for the interface.
 */
export function buildTrainingGraph(forward: Graph, loss: Value, opts: TrainingOptions): TrainingGraph {
  const g = forward;
  const accumulation = opts.accumulation ?? 1;
  if (!Number.isInteger(accumulation) || accumulation < 1) throw new GraphError(`accumulation ${accumulation} must be a positive integer`);
  if (loss.graph !== g || loss.rank !== 0) throw new GraphError(`the loss ${loss.describe()} must be a scalar of the forward graph`);
  const names = g.initializers.filter((w) => w.type === 'float32' || w.type === 'float64').map((w) => w.name).filter((n) => opts.trainable(n));
  if (!names.length) throw new GraphError('no weight of the graph is trainable');
  const initial = names.map((n) => g.initializerToInput(n));
  const type = initial[0]!.type;
  for (const w of initial) if (w.type !== type) throw new GraphError(`trainable weights mix ${type} and ${w.type}`);
  const params = names.map((n) => g.value(n));
  g.output(loss, 'loss');
  const grads = gradients(loss, params);
  const decays = opts.optimizer?.decays ?? decaysByDefault;
  const tensors: TrainableTensor[] = initial.map((w, i) => ({
    name: w.name, type: type as 'float32' | 'float64', shape: w.shape, decays: decays(w.name, w.shape), initial: w.bytes, reachesLoss: !!grads[i],
  }));
  if (opts.gradOutputs) grads.forEach((gr, i) => gr && g.output(gr, trainingNames(names[i]!).grad));

  const lr = g.input('lr', type, []);
  const step = g.input('step', type, []);
  const apply = accumulation > 1 ? g.input('apply_update', 'bool', []) : undefined;
  const live = params.map((p, i) => ({ p, grad: grads[i], io: trainingNames(p.name), tensor: tensors[i]! })).filter((t) => t.grad);
  // The gradient the update uses: this micro-batch's, or the running sum of the accumulation's.
  let used = live.map((t) => t.grad!);
  if (apply) {
    used = live.map((t, i) => {
      const acc = g.input(t.io.acc, type, t.p.shape);
      const sum = op.add(acc, op.mul(used[i]!, 1 / accumulation));
      g.output(op.where(apply, 0, sum), t.io.newAcc);
      return sum;
    });
  }
  if (opts.clipGradNorm !== undefined) {
    const clipped = clipByGlobalNorm(used, opts.clipGradNorm);
    g.output(clipped.norm, 'grad_norm');
    used = clipped.grads;
  } else {
    g.output(globalNorm(used), 'grad_norm');
  }
  const scalars = adamwScalars(lr, step, opts.optimizer ?? {});
  live.forEach((t, i) => {
    const m = g.input(t.io.m, type, t.p.shape);
    const v = g.input(t.io.v, type, t.p.shape);
    const next = adamwUpdate(t.p, used[i]!, m, v, scalars, t.tensor.decays, opts.optimizer ?? {});
    const keep = (updated: Value, old: Value) => (apply ? op.where(apply, updated, old) : updated);
    g.output(keep(next.p, t.p), t.io.newParam);
    g.output(keep(next.m, m), t.io.newM);
    g.output(keep(next.v, v), t.io.newV);
  });
  return { graph: g, tensors, accumulation, gradOutputs: !!opts.gradOutputs, dropout: g.inputs.some((v) => v.name === op.DROPOUT_SEED) };
}
