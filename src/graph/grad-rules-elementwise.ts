/** Gradient rules of element-wise ops (numpy broadcasting summed back by GradCall.sumTo). */
import type { GradCall, GradRule } from './autodiff-context.js';
import type { Value } from './ir.js';
import * as op from './ops/index.js';
import { isFloat } from './types.js';

/** A rule for a unary op: d(loss)/dx = dy · f'(x, y). */
const unary = (derivative: (x: Value, y: Value, g: Value) => Value): GradRule =>
  (c) => [derivative(c.input(0), c.outputs[0]!, c.grad())];

/**
 * Weight of `a` in max(a, b) (or min): 1 where it wins, ½ on ties, 0 where it loses, as torch.maximum/minimum
 * split the gradient (tools/autograd/derivatives.yaml).
 */
function winnerWeight(c: GradCall, wins: (a: Value, b: Value) => Value): Value {
  const a = c.input(0), b = c.input(1);
  return op.add(op.cast(wins(a, b), a.type), op.mul(op.cast(op.equal(a, b), a.type), 0.5));
}

const extremum = (wins: (a: Value, b: Value) => Value): GradRule => (c) => {
  const w = winnerWeight(c, wins);
  const g = c.grad();
  return c.each((i) => c.sumTo(op.mul(g, i === 0 ? w : op.sub(op.scalar(w, 1), w)), c.input(i)));
};

export const elementwiseRules: Record<string, GradRule> = {
  Identity: (c) => [c.grad()],
  Add: (c) => c.each((i) => c.sumTo(c.grad(), c.input(i))),
  Sub: (c) => c.each((i) => c.sumTo(i === 0 ? c.grad() : op.neg(c.grad()), c.input(i))),
  Mul: (c) => c.each((i) => c.sumTo(op.mul(c.grad(), c.input(1 - i)), c.input(i))),
  // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b.
  Div: (c) => c.each((i) => c.sumTo(i === 0
    ? op.div(c.grad(), c.input(1))
    : op.neg(op.div(op.mul(c.grad(), c.outputs[0]!), c.input(1))), c.input(i))),
  // d(a^b)/da = b·a^(b-1); d(a^b)/db = a^b·ln a.
  Pow: (c) => {
    const [a, b] = [c.input(0), c.input(1)];
    return c.each((i) => c.sumTo(i === 0
      ? op.mul(c.grad(), op.mul(b, op.pow(a, op.sub(b, op.scalar(b, 1)))))
      : op.mul(c.grad(), op.mul(c.outputs[0]!, op.log(a))), c.input(i)));
  },
  Max: extremum(op.greater),
  Min: extremum(op.less),
  Neg: (c) => [op.neg(c.grad())],
  Abs: unary((x, _y, g) => op.mul(g, op.sign(x))),
  Sqrt: unary((_x, y, g) => op.div(g, op.mul(y, 2))),
  Reciprocal: unary((_x, y, g) => op.neg(op.mul(g, op.mul(y, y)))),
  Exp: unary((_x, y, g) => op.mul(g, y)),
  Log: unary((x, _y, g) => op.div(g, x)),
  // d erf(x)/dx = 2/√π · exp(-x²).
  Erf: unary((x, _y, g) => op.mul(g, op.mul(op.exp(op.neg(op.mul(x, x))), 2 / Math.sqrt(Math.PI)))),
  Tanh: unary((_x, y, g) => op.mul(g, op.sub(op.scalar(y, 1), op.mul(y, y)))),
  Sigmoid: unary((_x, y, g) => op.mul(g, op.mul(y, op.sub(op.scalar(y, 1), y)))),
  Cos: unary((x, _y, g) => op.neg(op.mul(g, op.sin(x)))),
  Sin: unary((x, _y, g) => op.mul(g, op.cos(x))),
  // The gradient passes where min ≤ x ≤ max, as torch.clamp's does.
  Clip: (c) => {
    const x = c.input(0);
    let inside: Value | undefined;
    const [lo, hi] = [c.inputs[1], c.inputs[2]];
    if (lo) inside = op.not(op.less(x, lo));
    if (hi) inside = inside ? op.and(inside, op.not(op.greater(x, hi))) : op.not(op.greater(x, hi));
    const g = c.grad();
    return [inside ? op.where(inside, g, 0) : g];
  },
  Where: (c) => {
    const [cond, g] = [c.input(0), c.grad()];
    return c.each((i) => (i === 0 ? undefined : c.sumTo(i === 1 ? op.where(cond, g, 0) : op.where(cond, 0, g), c.input(i))));
  },
  Cast: (c) => {
    const x = c.input(0);
    return [isFloat(x.type) ? op.cast(c.grad(), x.type) : undefined];
  },
};
