/**
 * Runs a training graph step by step. Trainable tensors, Adam's moments and the accumulated gradient stay in two
 * buffers each that ORT reads and writes in turn: a step feeds the current buffers as inputs (onnxruntime-node
 * wraps a typed array without copying it) and hands ORT the other buffers as preallocated outputs, which the
 * update's last kernels write directly; the two are then swapped. No weight passes through JavaScript during a
 * step; frozen weights are initializers inside the ORT session. What a step copies is the caller's batch (into
 * ORT's input tensors, not copied either) and the scalar loss and gradient norm out.
 */
import { ort, Session, type SessionOptions } from '../runtime/session.js';
import { DROPOUT_SEED } from '../graph/ops/index.js';
import { trainingNames, type TrainableTensor, type TrainingGraph } from './training-graph.js';

type Floats = Float32Array | Float64Array;

export interface TrainerOptions extends Pick<SessionOptions, 'threads' | 'optimization' | 'memArena'> {
  /** Seed of the dropout masks (each micro-batch gets its own stream from it); default 0. */
  seed?: number;
  /** Scalar outputs of the forward graph to report with each step (parts of a composite loss, say). */
  metrics?: readonly string[];
}

export interface StepResult {
  /** The micro-batch's loss, before this step's update. */
  loss: number;
  /** Whether this micro-batch ended an accumulation and the update ran. */
  updated: boolean;
  /** Global 2-norm of the gradient the update used (of the accumulated sum on the last micro-batch). */
  gradNorm: number;
  /** The micro-batch's gradients by tensor name, when the graph was built with gradOutputs (fresh arrays). */
  grads?: Map<string, Floats>;
  /** The options' metrics, by name. */
  metrics: Record<string, number>;
}

/** What resumes training: the update count, and every trainable tensor with its moments. */
export interface TrainerState {
  step: number;
  params: Map<string, Floats>;
  m: Map<string, Floats>;
  v: Map<string, Floats>;
}

/** A state buffer pair: `current` is fed to the next step, `spare` receives its output. */
class Pair {
  private tensors: [ort.Tensor, ort.Tensor];

  constructor(type: 'float32' | 'float64', readonly shape: readonly number[]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const make = () => new ort.Tensor(type, type === 'float32' ? new Float32Array(n) : new Float64Array(n), [...shape]);
    this.tensors = [make(), make()];
  }

  get current(): ort.Tensor {
    return this.tensors[0];
  }

  get spare(): ort.Tensor {
    return this.tensors[1];
  }

  get values(): Floats {
    return this.current.data as Floats;
  }

  swap(): void {
    this.tensors = [this.tensors[1], this.tensors[0]];
  }
}

interface Slot {
  tensor: TrainableTensor;
  param: Pair;
  m?: Pair;
  v?: Pair;
  acc?: Pair;
}

export class Trainer {
  private steps = 0;
  private micro = 0;

  private constructor(
    private readonly session: Session,
    private readonly training: TrainingGraph,
    private readonly slots: Map<string, Slot>,
    private readonly seed: number,
    private readonly metrics: readonly string[],
  ) {}

  /** Compiles the training graph into an ORT session and loads the trainable tensors' initial values. */
  static async create(training: TrainingGraph, opts: TrainerOptions = {}): Promise<Trainer> {
    for (const name of opts.metrics ?? []) {
      const value = training.graph.outputs.find((v) => v.name === name);
      if (!value || value.rank !== 0) throw new Error(`metric '${name}' is not a scalar output of the training graph`);
    }
    const slots = new Map<string, Slot>();
    for (const t of training.tensors) {
      const slot: Slot = { tensor: t, param: new Pair(t.type, t.shape) };
      const bytes = t.initial instanceof Uint8Array ? t.initial : await t.initial();
      new Uint8Array(slot.param.values.buffer, slot.param.values.byteOffset, slot.param.values.byteLength).set(bytes);
      if (t.reachesLoss) {
        slot.m = new Pair(t.type, t.shape);
        slot.v = new Pair(t.type, t.shape);
        if (training.accumulation > 1) slot.acc = new Pair(t.type, t.shape);
      }
      slots.set(t.name, slot);
    }
    const session = await Session.fromGraph(training.graph, { threads: opts.threads, optimization: opts.optimization, memArena: opts.memArena });
    return new Trainer(session, training, slots, opts.seed ?? 0, opts.metrics ?? []);
  }

  /** The trainable tensors, in graph order. */
  get tensors(): readonly TrainableTensor[] {
    return this.training.tensors;
  }

  /** Updates applied so far. */
  get step(): number {
    return this.steps;
  }

  /**
   * Runs one micro-batch: `batch` feeds the forward graph's inputs, `lr` is this update's learning rate. The
   * update runs on every `accumulation`-th call.
   */
  async run(batch: Record<string, ort.Tensor>, lr: number): Promise<StepResult> {
    const { accumulation, gradOutputs, dropout } = this.training;
    const type = this.training.tensors[0]!.type;
    const scalar = (x: number) => new ort.Tensor(type, type === 'float32' ? Float32Array.of(x) : Float64Array.of(x), []);
    const apply = (this.micro + 1) % accumulation === 0;
    const feeds: Record<string, ort.Tensor> = { ...batch, lr: scalar(lr), step: scalar(this.steps + 1) };
    if (accumulation > 1) feeds['apply_update'] = new ort.Tensor('bool', Uint8Array.of(apply ? 1 : 0), []);
    if (dropout) feeds[DROPOUT_SEED] = new ort.Tensor('int64', BigInt64Array.of(BigInt(microBatchSeed(this.seed, this.micro))), []);
    const fetches: Record<string, ort.Tensor | null> = { loss: null, grad_norm: null };
    for (const name of this.metrics) fetches[name] = null;
    for (const [name, s] of this.slots) {
      const io = trainingNames(name);
      feeds[io.param] = s.param.current;
      if (!s.m) continue;
      const pairs: [Pair, string, string][] = [[s.param, io.param, io.newParam], [s.m, io.m, io.newM], [s.v!, io.v, io.newV]];
      if (s.acc) pairs.push([s.acc, io.acc, io.newAcc]);
      for (const [pair, input, output] of pairs) {
        feeds[input] = pair.current;
        fetches[output] = pair.spare;
      }
      if (gradOutputs) fetches[io.grad] = null;
    }
    const out = await this.session.run(feeds, fetches as Record<string, ort.Tensor>);
    for (const s of this.slots.values()) {
      if (s.m) for (const pair of [s.param, s.m, s.v, s.acc]) pair?.swap();
    }
    this.micro++;
    if (apply) this.steps++;
    const metrics = Object.fromEntries(this.metrics.map((name) => [name, Number(out[name]!.data[0])]));
    const result: StepResult = { loss: Number(out['loss']!.data[0]), updated: apply, gradNorm: Number(out['grad_norm']!.data[0]), metrics };
    if (gradOutputs) {
      result.grads = new Map([...this.slots.values()].filter((s) => s.m).map((s) => [s.tensor.name, out[trainingNames(s.tensor.name).grad]!.data as Floats]));
    }
    return result;
  }

  /** The current values of trainable tensor `name` (a view, valid until the next run(); copy it to keep it). */
  param(name: string): Floats {
    return this.slot(name).param.values;
  }

  /** Replaces the values of trainable tensor `name` (e.g. from a checkpoint). */
  setParam(name: string, values: ArrayLike<number>): void {
    fill(this.slot(name).param, values, name);
  }

  /** A copy of everything training needs to resume. */
  state(): TrainerState {
    const copy = (get: (s: Slot) => Pair | undefined) =>
      new Map([...this.slots].flatMap(([name, s]) => {
        const pair = get(s);
        return pair ? [[name, pair.values.slice()] as const] : [];
      }));
    return { step: this.steps, params: copy((s) => s.param), m: copy((s) => s.m), v: copy((s) => s.v) };
  }

  /** Restores a state (any tensor it lacks keeps its values); a partial accumulation is dropped. */
  setState(state: TrainerState): void {
    for (const [name, s] of this.slots) {
      const p = state.params.get(name), m = state.m.get(name), v = state.v.get(name);
      if (p) fill(s.param, p, name);
      if (m && s.m) fill(s.m, m, `adam_m.${name}`);
      if (v && s.v) fill(s.v, v, `adam_v.${name}`);
      s.acc?.values.fill(0);
    }
    this.steps = state.step;
    this.micro = state.step * this.training.accumulation;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }

  private slot(name: string): Slot {
    const s = this.slots.get(name);
    if (!s) throw new RangeError(`'${name}' is not a trainable tensor`);
    return s;
  }
}

function fill(pair: Pair, values: ArrayLike<number>, name: string): void {
  if (values.length !== pair.values.length) throw new RangeError(`'${name}' holds ${pair.values.length} values, got ${values.length}`);
  pair.values.set(values);
}

/** A 32-bit seed for micro-batch `micro` of a run seeded with `seed` (the graph reads the low 32 bits). */
function microBatchSeed(seed: number, micro: number): number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) ^ micro;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
