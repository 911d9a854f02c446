import type { WeightLayout } from '../../graph/weights.js';
import type { ShardSplit } from '../../io/split-shards.js';

/**
 * Meta's LLaMA names (params.json + consolidated.*.pth) for the HF names that model code uses, after
 * transformers' convert_llama_weights_to_hf.py.
 */
const META_NAMES: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, 'tok_embeddings.weight'],
  [/^model\.norm\.weight$/, 'norm.weight'],
  [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.weight$/, 'layers.$1.attention.w$2.weight'],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, 'layers.$1.feed_forward.w1.weight'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, 'layers.$1.feed_forward.w2.weight'],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, 'layers.$1.feed_forward.w3.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'layers.$1.attention_norm.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'layers.$1.ffn_norm.weight'],
];

/**
 * Meta's checkpoints apply RoPE to interleaved pairs (2i, 2i+1) of each head; HF's rotate-half pairs (i, i+d/2).
 * Reordering wq/wk rows turns one into the other (convert_llama_weights_to_hf.py `permute`): HF row
 * (head, half, i) is Meta row (head, 2i + half). The same model then serves both layouts.
 */
export function metaLayout(heads: number, kvHeads: number, prefix = ''): WeightLayout {
  return {
    rename(name) {
      for (const [pattern, meta] of META_NAMES) if (pattern.test(name)) return prefix + name.replace(pattern, meta);
      return prefix + name;
    },
    rowOrder(name, shape) {
      const m = /\.attention\.w([qk])\.weight$/.exec(name);
      if (!m) return undefined;
      return interleavedToHalfOrder(m[1] === 'q' ? heads : kvHeads, shape[0]!);
    },
  };
}

export function interleavedToHalfOrder(heads: number, rows: number): number[] {
  const dim = rows / heads;
  const order = new Array<number>(rows);
  for (let h = 0; h < heads; h++) {
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < dim / 2; i++) order[h * dim + half * (dim / 2) + i] = h * dim + 2 * i + half;
    }
  }
  return order;
}

/**
 * How Meta's model parallelism (fairscale, as llama/model.py builds it) divides a tensor among the
 * consolidated.NN.pth files: ColumnParallelLinear (wq, wk, wv, w1, w3, output) splits its output features
 * (dim 0), RowParallelLinear (wo, w2) its input features (dim 1), ParallelEmbedding (tok_embeddings) the
 * embedding width (dim 1); norms and rope.freqs are whole in every file. Other tensors are not known.
 */
export function metaShardSplit(name: string): ShardSplit | undefined {
  if (/(^|\.)(attention\.w[qkv]|feed_forward\.w[13]|output)\.weight$/.test(name)) return { dim: 0 };
  if (/(^|\.)(attention\.wo|feed_forward\.w2|tok_embeddings)\.weight$/.test(name)) return { dim: 1 };
  if (/(^|\.)(attention_norm|ffn_norm|norm)\.weight$/.test(name) || /(^|\.)rope\.freqs$/.test(name)) return 'replicated';
  return undefined;
}

/** HF names under a prefix (llava-hf keeps the LLM under 'language_model.'). */
export function prefixedLayout(prefix: string): WeightLayout {
  return { rename: (name) => prefix + name };
}
