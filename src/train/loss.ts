import { GraphError, type Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';

/**
 * Token cross-entropy with an ignored label: mean over the targets that are not `ignoreIndex` of −log softmax(logits)
 * at the target, pooled over every position of the batch (torch.nn.functional.cross_entropy with ignore_index and
 * reduction 'mean'; NaN when every target is ignored, as there). logits [..., vocab], targets int64 [...].
 * Built from LogSoftmax and GatherElements, whose gradient rules give softmax − one-hot at the targets.
 */
export function crossEntropy(logits: Value, targets: Value, ignoreIndex: number): Value {
  if (targets.type !== 'int64' || targets.rank !== logits.rank - 1) {
    throw new GraphError(`crossEntropy: targets ${targets.describe()} must be int64 with the logits' dims but the last (${logits.describe()})`);
  }
  const valid = op.not(op.equal(targets, ignoreIndex));
  const picked = op.gatherElements(op.logSoftmax(logits, -1), op.unsqueeze(op.where(valid, targets, 0), [-1]), -1);
  const weight = op.cast(valid, logits.type);
  const all = targets.shape.map((_, i) => i);
  const total = op.reduceSum(op.mul(op.squeeze(picked, [-1]), weight), all, false);
  return op.neg(op.div(total, op.reduceSum(weight, all, false)));
}

/**
 * Cross-entropy of one attention head's logits [batch, heads, seq, seq] (scores plus mask, before the softmax) over
 * its keys, against key positions `targets` [batch, seq] (`ignoreIndex` where a row is not told): a training aid
 * that tells a head where to look.
 */
export function headAttentionCrossEntropy(attentionLogits: Value, head: number, targets: Value, ignoreIndex: number): Value {
  return crossEntropy(op.squeeze(op.slice(attentionLogits, [1], [head], [head + 1]), [1]), targets, ignoreIndex);
}

/**
 * The same for the first `count` heads at once, each told its own rows: targets [batch, count, seq]; the mean over
 * every row told, whichever head.
 */
export function headsAttentionCrossEntropy(attentionLogits: Value, count: number, targets: Value, ignoreIndex: number): Value {
  return crossEntropy(op.slice(attentionLogits, [1], [0], [count]), targets, ignoreIndex);
}
