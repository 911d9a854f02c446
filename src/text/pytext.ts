/**
 * Python `str` semantics that the official scripts rely on (scorers, prompt builders), so that egret splits, strips and reads lines
 * exactly as they do (JavaScript's \s and line handling differ at the edges).
 */

/** The characters for which Python's str.isspace() is true: what str.split() and str.strip() remove. */
const WHITESPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const RUNS = new RegExp(`[${WHITESPACE}]+`, 'u');
const EDGES = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, 'gu');

/** Python's `text.split()` with no separator: whitespace runs, no empty pieces. */
export function pySplit(text: string): string[] {
  return text.split(RUNS).filter((piece) => piece !== '');
}

/** Python's `text.strip()` with no argument. */
export function pyStrip(text: string): string {
  return text.replace(EDGES, '');
}

/** Lines as Python's `for line in open(path)` yields them (universal newlines), without their terminators. */
export function pyLines(text: string): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Python's `text[:n]`: counts code points, not UTF-16 units. */
export function pyPrefix(text: string, n: number): string {
  return Array.from(text).slice(0, n).join('');
}
