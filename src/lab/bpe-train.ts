/**
 * A SentencePiece BPE model learnt from the lab's text, laid out as LLaMA's tokenizer.model is: <unk> 0, <s> 1,
 * </s> 2, the 256 byte pieces <0x00>..<0xFF> (byte fallback), the merged pieces in the order they were learnt
 * (score -0, -1, ...), then the single characters, most frequent first.
 *
 * Which pieces may exist follows SentencePiece's trainer options as LLaMA set them (trainer_interface.cc
 * IsValidSentencePiece): '▁' only at a piece's start (split_by_whitespace), no digit joined to anything
 * (split_digits), letters not joined to other characters (split_by_unicode_script), no newline inside a piece.
 * One rule is egret's own: an upper-case letter only starts a piece ("▁What", "Question"), so that the codes of the
 * small-print task ("K7Q2") are always spelt one character per piece, whatever words the text holds.
 */
import { encodeSentencePieceModel } from '../text/sentencepiece-write.js';
import { PieceType, type ModelPiece } from '../text/sentencepiece-model.js';

const SPACE = '\u2581';
const MAX_PIECE_LENGTH = 16;

export interface BpeTrainOptions {
  /** Pieces in all, the 3 special and 256 byte pieces included. */
  vocabSize: number;
}

/** The pieces of a BPE model learnt from `texts` (each a whole sample, encoded as the tokenizer will see it). */
export function trainBpePieces(texts: Iterable<string>, { vocabSize }: BpeTrainOptions): ModelPiece[] {
  const words = new Map<string, number>();
  const charCounts = new Map<string, number>();
  for (const text of texts) {
    for (const word of splitWords(text)) {
      words.set(word, (words.get(word) ?? 0) + 1);
      for (const ch of word) charCounts.set(ch, (charCounts.get(ch) ?? 0) + 1);
    }
  }
  // Printable ASCII is always a piece, so that any English text needs no byte pieces.
  for (let c = 0x21; c <= 0x7e; c++) if (!charCounts.has(String.fromCharCode(c))) charCounts.set(String.fromCharCode(c), 0);
  if (!charCounts.has(SPACE)) charCounts.set(SPACE, 0);
  const chars = [...charCounts].sort((a, b) => b[1] - a[1] || compare(a[0], b[0])).map(([ch]) => ch);
  const reserved = 3 + 256;
  const mergeBudget = vocabSize - reserved - chars.length;
  if (mergeBudget < 0) throw new Error(`a vocabulary of ${vocabSize} pieces cannot hold the ${reserved} special and byte pieces and ${chars.length} characters`);

  const merges = learnMerges([...words].map(([word, count]) => ({ symbols: Array.from(word), count })), mergeBudget);
  return [
    { piece: '<unk>', score: 0, type: PieceType.Unknown },
    { piece: '<s>', score: 0, type: PieceType.Control },
    { piece: '</s>', score: 0, type: PieceType.Control },
    ...Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PieceType.Byte })),
    ...merges.map((piece, i) => ({ piece, score: -i, type: PieceType.Normal })),
    ...chars.map((piece, i) => ({ piece, score: -(merges.length + i), type: PieceType.Normal })),
  ];
}

/** A tokenizer.model (BOS 1, EOS 2, UNK 0, byte fallback) learnt from `texts`. */
export function trainTokenizerModel(texts: Iterable<string>, options: BpeTrainOptions): Uint8Array {
  return encodeSentencePieceModel({
    pieces: trainBpePieces(texts, options),
    byteFallback: true,
    splitDigits: true,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    removeExtraWhitespaces: false,
  });
}

/**
 * The text as the encoder sees it (a dummy-prefix space, spaces as '▁'), cut where no piece may cross: before
 * each '▁' and around each newline.
 */
function splitWords(text: string): string[] {
  const normalized = `${SPACE}${text.replaceAll(' ', SPACE)}`;
  return normalized.split(/(?=\u2581)|(\n)/u).filter((w): w is string => w !== undefined && w !== '');
}

interface Word {
  symbols: string[];
  count: number;
}

/**
 * Greedy BPE: repeatedly joins the most frequent adjacent pair whose union may be a piece (ties: the union that
 * sorts first), until `budget` pieces are learnt or no pair occurs twice.
 */
function learnMerges(words: Word[], budget: number): string[] {
  const merges: string[] = [];
  while (merges.length < budget) {
    const pairs = new Map<string, { left: string; right: string; count: number }>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const left = symbols[i]!;
        const right = symbols[i + 1]!;
        const key = `${left}\u0000${right}`;
        const entry = pairs.get(key);
        if (entry) entry.count += count;
        else if (mayBePiece(left + right)) pairs.set(key, { left, right, count });
      }
    }
    let best: { left: string; right: string; count: number } | undefined;
    for (const pair of pairs.values()) {
      if (!best || pair.count > best.count || (pair.count === best.count && compare(pair.left + pair.right, best.left + best.right) < 0)) best = pair;
    }
    if (!best || best.count < 2) break;
    const piece = best.left + best.right;
    if (!merges.includes(piece)) merges.push(piece);
    for (const word of words) word.symbols = joinPair(word.symbols, best.left, best.right);
  }
  return merges;
}

function joinPair(symbols: string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(symbols[i]!);
    }
  }
  return out;
}

/** Whether a string of two or more characters may be a piece (the rules in this file's comment). */
function mayBePiece(piece: string): boolean {
  const chars = Array.from(piece);
  if (chars.length > MAX_PIECE_LENGTH) return false;
  const body = chars[0] === SPACE ? chars.slice(1) : chars;
  if (body.length === 0 || body.includes(SPACE) || body.includes('\n')) return false;
  if (body.some((ch) => /\p{Nd}/u.test(ch))) return false;
  const letters = body.filter((ch) => /\p{L}/u.test(ch)).length;
  if (letters !== 0 && letters !== body.length) return false;
  return body.slice(1).every((ch) => !/\p{Lu}/u.test(ch));
}

/** Code-unit order, the same on every machine (localeCompare is not). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
