/** A token written as text in a prompt that stands for one id (`</s>`, `<image>`, …), never split into pieces. */
export interface TextToken {
  content: string;
  id: number;
}

/**
 * The text cut at every occurrence of the tokens: its segments and, between them, the tokens' ids (left to right,
 * the longest token first where several start at the same place) — the split HF tokenizers make before encoding
 * (tokenization_utils.py `tokens_trie.split` for the slow tokenizers, added-token matching for the fast ones).
 * `tokens` must be sorted by length, longest first.
 */
export function splitOnTokens(text: string, tokens: readonly TextToken[]): (string | number)[] {
  const out: (string | number)[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const token = tokens.find((t) => text.startsWith(t.content, i));
    if (!token) {
      i++;
      continue;
    }
    if (i > start) out.push(text.slice(start, i));
    out.push(token.id);
    i += token.content.length;
    start = i;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

/** Sorted as splitOnTokens needs them. */
export function longestFirst(tokens: readonly TextToken[]): TextToken[] {
  return [...tokens].sort((a, b) => b.content.length - a.content.length);
}
