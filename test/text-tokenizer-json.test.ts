import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../src/errors.js';
import { loadTokenizer } from '../src/text/load.js';
import { SentencePieceTokenizer } from '../src/text/sentencepiece.js';
import { TokenizerJson } from '../src/text/tokenizer-json.js';

const expected = JSON.parse(readFileSync('test/fixtures/tokenizer/expected.json', 'utf8')) as {
  encode: { text: string; ids: number[]; decoded: string }[];
  pieces: { id: number; piece: string; score: number; type: string }[];
};
const sentencePiece = await SentencePieceTokenizer.fromFile('test/fixtures/tokenizer/tokenizer.model');

type Piece = (typeof expected.pieces)[number];

/**
 * The tokenizer.json that transformers' LlamaConverter (convert_slow_tokenizer.py) writes for the fixture's
 * tokenizer.model: merges from SentencePieceExtractor (every split of a piece into two pieces, by the piece's
 * score, then by the ids of the parts), fuse_unk and byte fallback, <unk>/<s>/</s> as special added tokens.
 */
function llamaTokenizerJson(style: 'legacy' | 'metaspace', pieces: Piece[] = expected.pieces): object {
  const vocab = Object.fromEntries(pieces.map((p, id) => [p.piece, id]));
  const merges = pieces
    .flatMap((p) => {
      const chars = [...p.piece];
      const local: { left: string; right: string; score: number }[] = [];
      for (let i = 1; i < chars.length; i++) {
        const left = chars.slice(0, i).join('');
        const right = chars.slice(i).join('');
        if (left in vocab && right in vocab) local.push({ left, right, score: p.score });
      }
      return local.sort((a, b) => vocab[a.left]! - vocab[b.left]! || vocab[a.right]! - vocab[b.right]!);
    })
    .sort((a, b) => b.score - a.score) // stable, as Python's sorted
    .map((m) => `${m.left} ${m.right}`);
  const special = (id: number, content: string): object => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  const metaspace = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer:
      style === 'legacy'
        ? {
            type: 'Sequence',
            normalizers: [
              { type: 'Prepend', prepend: '\u2581' },
              { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
            ],
          }
        : null,
    pre_tokenizer: style === 'legacy' ? null : metaspace,
    post_processor: null,
    decoder:
      style === 'legacy'
        ? {
            type: 'Sequence',
            decoders: [
              { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
              { type: 'ByteFallback' },
              { type: 'Fuse' },
              { type: 'Strip', content: ' ', start: 1, stop: 0 },
            ],
          }
        : metaspace,
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: pieces.some((p) => p.type === 'byte'), vocab, merges,
    },
  };
}

const hasSpecialText = (text: string): boolean => /<unk>|<s>|<\/s>/.test(text);

test('tokenizer.json (legacy LLaMA normaliser) gives the SentencePiece ids', () => {
  const tok = TokenizerJson.fromJson(llamaTokenizerJson('legacy'));
  assert.equal(tok.vocabSize, expected.pieces.length);
  for (const c of expected.encode.filter((c) => !hasSpecialText(c.text))) {
    assert.deepEqual(tok.encode(c.text, { bos: false }), c.ids, JSON.stringify(c.text));
    assert.equal(tok.decode(c.ids), c.decoded, JSON.stringify(c.text));
    const stream = tok.streamDecoder();
    assert.equal(c.ids.map((id) => stream.push(id)).join('') + stream.flush(), c.decoded);
  }
  assert.deepEqual(tok.encode('Hello world'), [sentencePiece.bosId, ...sentencePiece.encode('Hello world', { bos: false })]);
});

test('tokenizer.json: added tokens are matched in the text, each other segment normalised on its own', () => {
  const tok = TokenizerJson.fromJson(llamaTokenizerJson('legacy'));
  // HF fast tokenizers parse special-token text (SentencePiece itself does not: see the fixture README).
  assert.deepEqual(tok.encode('</s>', { bos: false }), [2]);
  const sp = (s: string): number[] => sentencePiece.encode(s, { bos: false });
  assert.deepEqual(tok.encode('a</s>b', { bos: false }), [...sp('a'), 2, ...sp('b')]);
  // Special tokens are skipped when decoding, as skip_special_tokens does.
  assert.equal(tok.decode([1, ...sp('a'), 0, ...sp('b'), 2]), 'a b');
});

test('tokenizer.json with the Metaspace pre-tokenizer (prepend_scheme first)', () => {
  const tok = TokenizerJson.fromJson(llamaTokenizerJson('metaspace'));
  const sp = (s: string): number[] => sentencePiece.encode(s, { bos: false });
  for (const c of expected.encode.filter((c) => !hasSpecialText(c.text) && !c.text.startsWith(' '))) {
    assert.deepEqual(tok.encode(c.text, { bos: false }), c.ids, JSON.stringify(c.text));
  }
  // Text that already starts with a space gets no second '▁' (the known fast/slow difference).
  assert.deepEqual(tok.encode(' leading space', { bos: false }), sp('leading space'));
  // Only the segment at the start of the input gets the prefix.
  assert.deepEqual(tok.encode('a</s>b', { bos: false }), [...sp('a'), 2, sentencePiece.pieceToId('b')!]);
});

test('tokenizer.json without byte fallback fuses unknown characters into one <unk>', () => {
  const tok = TokenizerJson.fromJson(llamaTokenizerJson('legacy', expected.pieces.filter((p) => p.type !== 'byte')));
  assert.deepEqual(
    tok.encode('图像识别', { bos: false }).map((id) => tok.idToPiece(id)),
    ['\u2581', '图', '像', '<unk>'],
  );
});

test('loadTokenizer reads a directory with only tokenizer.json and honours tokenizer_config.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-tokjson-'));
  try {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(llamaTokenizerJson('legacy')));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: false, eos_token: { content: '</s>' } }));
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.encode('Hello world'), sentencePiece.encode('Hello world', { bos: false }));
    assert.equal(tok.eosId, 2);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('unsupported tokenizer.json kinds are refused with InputError', () => {
  const base = llamaTokenizerJson('legacy') as Record<string, any>;
  const refuses = (json: object, pattern: RegExp): void =>
    assert.throws(() => TokenizerJson.fromJson(json), (e: unknown) => e instanceof InputError && pattern.test(e.message));
  refuses({ ...base, model: { ...base.model, type: 'Unigram' } }, /model type Unigram is not supported/);
  refuses({ ...base, normalizer: { type: 'NFKC' } }, /normalizer NFKC is not supported/);
  refuses({ ...base, decoder: { type: 'ByteLevel' } }, /decoder ByteLevel is not supported/);
  refuses({ ...base, model: { ...base.model, merges: ['x y'] } }, /merge 0 makes 'xy', not in the vocabulary/);
  refuses([], /must be a JSON object/);
});
