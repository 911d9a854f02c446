/**
 * Reverse-mode automatic differentiation over the graph IR: appends to a graph the backward ops that compute
 * d(loss)/d(x) for chosen tensors x (training's trainable weights, which are graph inputs).
 *
 * Only nodes on a path from some x to the loss get backward ops: a frozen sub-graph that no x feeds (a frozen
 * tower before the first adapter) has none, so ORT frees its activations as soon as the forward pass is done
 * with them; frozen weights on such a path pass gradients through to activations but get none themselves.
 * Each backward op reads only what its rule names (see grad-rules*.ts); ORT keeps a forward tensor alive exactly
 * until its last reader has run.
 */
import { GraphError, type Node, type Value } from './ir.js';
import * as op from './ops/index.js';
import { GradCall, ShapeReader } from './autodiff-context.js';
import { gradRules } from './grad-rules.js';
import { isFloat } from './types.js';

export interface GradientOptions {
  /** d(loss)/d(loss), default 1; a tensor of the loss's shape for a non-scalar loss. */
  seed?: Value;
}

/**
 * Appends the backward pass of `loss` to its graph and returns d(loss)/d(x) for each x of `wrt` (same shape and
 * type), or undefined for an x the loss does not depend on.
 */
export function gradients(loss: Value, wrt: readonly Value[], opts: GradientOptions = {}): (Value | undefined)[] {
  const g = loss.graph;
  if (!isFloat(loss.type)) throw new GraphError(`gradients: loss ${loss.describe()} is not floating-point`);
  if (!opts.seed && loss.rank !== 0) throw new GraphError(`gradients: loss ${loss.describe()} is not a scalar; pass a seed`);
  for (const x of wrt) {
    if (x.graph !== g) throw new GraphError(`gradients: ${x.describe()} belongs to another graph`);
    if (!isFloat(x.type)) throw new GraphError(`gradients: ${x.describe()} is not floating-point`);
  }
  // The forward nodes, fixed before backward nodes are appended.
  const nodes = g.nodes.slice();
  const active = activeTensors(nodes, new Set(wrt.map((x) => x.name)), loss.name, (name) => isFloat(g.value(name).type));

  const contributions = new Map<string, Value[]>();
  const add = (name: string, grad: Value) => {
    const list = contributions.get(name);
    if (list) list.push(grad);
    else contributions.set(name, [grad]);
  };
  const total = (name: string): Value | undefined => {
    const list = contributions.get(name);
    if (!list) return undefined;
    const sum = list.length === 1 ? list[0]! : g.node('Sum', list, [{ type: list[0]!.type, shape: g.value(name).shape }])[0]!;
    contributions.set(name, [sum]);
    return sum;
  };

  add(loss.name, opts.seed ?? op.scalar(loss, 1));
  const shapes = new ShapeReader(g);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k]!;
    const needs = node.inputs.map((name) => name !== '' && active.has(name));
    if (!needs.some(Boolean)) continue;
    const grads = node.outputs.map(total);
    if (!grads.some(Boolean)) continue;
    const rule = gradRules[ruleKey(node)];
    if (!rule) throw new GraphError(`gradients: no gradient rule for ${ruleKey(node)} (node '${node.name}'), which lies between a trainable tensor and the loss`);
    const inputs = node.inputs.map((name) => (name === '' ? undefined : g.value(name)));
    const call = new GradCall(node, inputs, node.outputs.map((name) => g.value(name)), grads, needs, shapes);
    const results = rule(call);
    needs.forEach((need, i) => {
      if (!need) return;
      const grad = results[i];
      if (!grad) throw call.error(`the rule gave no gradient for input ${i}`);
      checkGradient(call, inputs[i]!, grad);
      add(inputs[i]!.name, grad);
    });
  }
  return wrt.map((x) => total(x.name));
}

/** The rule registry's key: the op type, prefixed by its domain outside the default one. */
function ruleKey(node: Node): string {
  return node.domain ? `${node.domain}.${node.opType}` : node.opType;
}

/**
 * Tensors that need a gradient: floating-point tensors that depend on some `wrt` tensor (forward reachability)
 * and that the loss depends on (backward reachability).
 */
function activeTensors(nodes: readonly Node[], wrt: ReadonlySet<string>, loss: string, differentiable: (name: string) => boolean): Set<string> {
  const fromWrt = new Set(wrt);
  for (const n of nodes) {
    if (!n.inputs.some((i) => fromWrt.has(i))) continue;
    for (const o of n.outputs) if (differentiable(o)) fromWrt.add(o);
  }
  const toLoss = new Set([loss]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.outputs.some((o) => toLoss.has(o))) continue;
    for (const i of n.inputs) if (i !== '') toLoss.add(i);
  }
  return new Set([...fromWrt].filter((name) => toLoss.has(name)));
}

function checkGradient(call: GradCall, x: Value, grad: Value): void {
  const same = grad.type === x.type && grad.rank === x.rank;
  if (!same) throw call.error(`gradient ${grad.describe()} does not match input ${x.describe()}`);
}
