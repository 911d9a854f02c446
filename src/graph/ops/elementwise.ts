import type { Value } from '../ir.js';
import { broadcast, fail } from '../shape.js';
import { isFloat, onnxTypeCode, type ElemType } from '../types.js';

/** A scalar constant of `like`'s element type, for arithmetic with `like`. */
export function scalar(like: Value, x: number, type: ElemType = like.type): Value {
  return like.graph.constant(type, [], [type === 'int64' ? BigInt(x) : x], 'scalar');
}

function operand(like: Value, x: Value | number): Value {
  return typeof x === 'number' ? scalar(like, x) : x;
}

function binary(op: string, a: Value, bIn: Value | number, outType?: ElemType): Value {
  const b = operand(a, bIn);
  if (a.type !== b.type) fail(op, [a, b], `element types differ`);
  return a.graph.node(op, [a, b], [{ type: outType ?? a.type, shape: broadcast(op, [a, b]) }])[0]!;
}

function unary(op: string, x: Value, attrs: Record<string, number | { float: number }> = {}): Value {
  return x.graph.node(op, [x], [{ type: x.type, shape: x.shape }], attrs)[0]!;
}

function floatOnly(op: string, x: Value): void {
  if (!isFloat(x.type)) fail(op, [x], 'needs a floating-point tensor');
}

export const add = (a: Value, b: Value | number) => binary('Add', a, b);
export const sub = (a: Value, b: Value | number) => binary('Sub', a, b);
export const mul = (a: Value, b: Value | number) => binary('Mul', a, b);
export const div = (a: Value, b: Value | number) => binary('Div', a, b);
export const pow = (a: Value, b: Value | number) => binary('Pow', a, b);
export const maximum = (a: Value, b: Value | number) => binary('Max', a, b);
export const minimum = (a: Value, b: Value | number) => binary('Min', a, b);
export const equal = (a: Value, b: Value | number) => binary('Equal', a, b, 'bool');
export const less = (a: Value, b: Value | number) => binary('Less', a, b, 'bool');
export const greater = (a: Value, b: Value | number) => binary('Greater', a, b, 'bool');

export const neg = (x: Value) => unary('Neg', x);
export const abs = (x: Value) => unary('Abs', x);
export const sqrt = (x: Value) => (floatOnly('Sqrt', x), unary('Sqrt', x));
export const reciprocal = (x: Value) => (floatOnly('Reciprocal', x), unary('Reciprocal', x));
export const exp = (x: Value) => (floatOnly('Exp', x), unary('Exp', x));
export const erf = (x: Value) => (floatOnly('Erf', x), unary('Erf', x));
export const tanh = (x: Value) => (floatOnly('Tanh', x), unary('Tanh', x));
export const sigmoid = (x: Value) => (floatOnly('Sigmoid', x), unary('Sigmoid', x));
export const not = (x: Value) => unary('Not', x);
export const and = (a: Value, b: Value) => binary('And', a, b);
export const log = (x: Value) => (floatOnly('Log', x), unary('Log', x));
export const sign = (x: Value) => unary('Sign', x);
export const cos = (x: Value) => (floatOnly('Cos', x), unary('Cos', x));
export const sin = (x: Value) => (floatOnly('Sin', x), unary('Sin', x));

/** SiLU (swish): x · σ(x), LLaMA's MLP activation. */
export const silu = (x: Value) => mul(x, sigmoid(x));

/** Exact GELU: x · Φ(x) = 0.5 · x · (1 + erf(x / √2)) (torch.nn.functional.gelu, approximate='none'). */
export function gelu(x: Value): Value {
  floatOnly('Gelu', x);
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}

/** QuickGELU: x · σ(1.702 x), used by OpenAI CLIP (clip/model.py QuickGELU). */
export const quickGelu = (x: Value) => mul(x, sigmoid(mul(x, 1.702)));

/** Element-wise select: cond ? a : b (at least one branch is a tensor; a number takes its type). */
export function where(cond: Value, a: Value | number, b: Value): Value;
export function where(cond: Value, a: Value, b: Value | number): Value;
export function where(cond: Value, a: Value | number, b: Value | number): Value {
  const av = typeof a === 'number' ? scalar(b as Value, a) : a;
  const bv = operand(av, b);
  if (cond.type !== 'bool') fail('Where', [cond], 'condition must be bool');
  if (av.type !== bv.type) fail('Where', [av, bv], 'element types differ');
  return cond.graph.node('Where', [cond, av, bv], [{ type: av.type, shape: broadcast('Where', [cond, av, bv]) }])[0]!;
}

export function cast(x: Value, to: ElemType): Value {
  if (x.type === to) return x;
  return x.graph.node('Cast', [x], [{ type: to, shape: x.shape }], { to: onnxTypeCode[to] })[0]!;
}

export function clip(x: Value, min: number, max: number): Value {
  return x.graph.node('Clip', [x, scalar(x, min), scalar(x, max)], [{ type: x.type, shape: x.shape }])[0]!;
}
