import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InputError } from '../src/errors.js';
import { bpeMerge } from '../src/text/bpe-merge.js';
import { tokenizeImagePrompt } from '../src/text/image-prompt.js';
import { SentencePieceTokenizer } from '../src/text/sentencepiece.js';

const dir = 'test/fixtures/tokenizer';
const modelBytes = readFileSync(`${dir}/tokenizer.model`);
const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as {
  vocab_size: number;
  unk_id: number;
  bos_id: number;
  eos_id: number;
  encode: { text: string; ids: number[]; pieces: string[]; decoded: string }[];
  decode: { ids: number[]; text: string }[];
  llava_prompts: { prompt: string; chunks: string[]; chunk_ids_with_bos: number[][]; input_ids: number[] }[];
  pieces: { id: number; piece: string; score: number; type: string }[];
};
const tokenizer = SentencePieceTokenizer.fromBytes(modelBytes);

test('vocabulary and special ids match the model', () => {
  assert.equal(tokenizer.vocabSize, expected.vocab_size);
  assert.equal(tokenizer.unkId, expected.unk_id);
  assert.equal(tokenizer.bosId, expected.bos_id);
  assert.equal(tokenizer.eosId, expected.eos_id);
  for (const { id, piece } of expected.pieces) {
    assert.equal(tokenizer.idToPiece(id), piece);
    assert.equal(tokenizer.pieceToId(piece), id);
  }
  assert.equal(tokenizer.pieceToId('no such piece'), undefined);
  assert.throws(() => tokenizer.idToPiece(expected.vocab_size), InputError);
});

test('encode gives the ids and pieces of Python SentencePiece', () => {
  for (const c of expected.encode) {
    const ids = tokenizer.encode(c.text, { bos: false });
    assert.deepEqual(ids, c.ids, JSON.stringify(c.text));
    assert.deepEqual(ids.map((id) => tokenizer.idToPiece(id)), c.pieces, JSON.stringify(c.text));
  }
});

test('BOS is added by default and EOS on request', () => {
  const { text, ids } = expected.encode[2]!;
  assert.deepEqual(tokenizer.encode(text), [expected.bos_id, ...ids]);
  assert.deepEqual(tokenizer.encode(text, { bos: false, eos: true }), [...ids, expected.eos_id]);
});

test('decode matches SentencePiece', () => {
  for (const c of expected.encode) assert.equal(tokenizer.decode(c.ids), c.decoded, JSON.stringify(c.text));
  for (const c of expected.decode) assert.equal(tokenizer.decode(c.ids), c.text, JSON.stringify(c.ids));
  assert.throws(() => tokenizer.decode([expected.vocab_size]), InputError);
});

test('stream decoding concatenates to the full decode and never splits a character', () => {
  const cases = [...expected.encode.map((c) => c.ids), ...expected.decode.map((c) => c.ids)];
  for (const ids of cases) {
    const decoder = tokenizer.streamDecoder();
    const parts = ids.map((id) => decoder.push(id));
    const tail = decoder.flush();
    assert.equal(parts.join('') + tail, tokenizer.decode(ids), JSON.stringify(ids));
    for (const part of parts) assert.ok(!/[\uD800-\uDBFF]$/.test(part), 'no half surrogate pair');
  }
  // 'ï' is two byte pieces: nothing until the second arrives, then the whole character.
  const decoder = tokenizer.streamDecoder();
  assert.equal(decoder.push(198), '');
  assert.equal(decoder.push(178), 'ï');
  // An incomplete sequence still pending at the end becomes U+FFFD per byte, as in the full decode.
  const cut = tokenizer.streamDecoder();
  assert.equal(cut.push(230) + cut.push(155), '');
  assert.equal(cut.flush(), tokenizer.decode([230, 155]));
});

test("LLaVA's tokenizer_image_token: per-chunk encoding joined by -200", () => {
  for (const c of expected.llava_prompts) {
    assert.deepEqual(c.prompt.split('<image>'), c.chunks);
    c.chunks.forEach((chunk, i) => assert.deepEqual(tokenizer.encode(chunk, { bos: true }), c.chunk_ids_with_bos[i]));
    assert.deepEqual(tokenizeImagePrompt(tokenizer, c.prompt), c.input_ids);
  }
});

test('encoding work grows linearly: merge look-ups for 50k characters vs 5k', () => {
  const unit = 'A chat between a curious user and 图像 assistant 2024!\n  xxxxxxxx 🙂 ';
  const text = (n: number): string => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  // The same BPE the tokenizer runs, over the same initial symbols, with its vocabulary's scores; what is counted is
  // the work that grows with the text: every look-up of a candidate pair (each one also queues at most one merge).
  const score = new Map(expected.pieces.filter((p) => p.type === 'normal').map((p) => [p.piece, p.score]));
  const lookups = (s: string): number => {
    let calls = 0;
    const symbols = [...`▁${s.replaceAll(' ', '▁')}`].map((c) => ({ text: c, frozen: false }));
    const pieces = bpeMerge(symbols, {
      mergeScore: (left, right) => {
        calls++;
        return score.get(left + right);
      },
    });
    // The count is of the tokenizer's own work: the pieces are the ones it encodes (unknown pieces fall back to bytes).
    const ids = pieces.flatMap((p) => tokenizer.pieceToId(p) ?? [...new TextEncoder().encode(p)].map((byte) => tokenizer.pieceToId(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`)!));
    assert.deepEqual(ids, tokenizer.encode(s, { bos: false }));
    assert.ok(calls <= 3 * symbols.length, `${calls} look-ups for ${symbols.length} symbols`);
    return calls;
  };
  const [small, large] = [lookups(text(5_000)), lookups(text(50_000))];
  // 10x the input: 10x the look-ups (a quadratic merge loop would make about 100x).
  assert.ok(large / small > 9.5 && large / small < 10.5, `look-ups: ${small} for 5k characters, ${large} for 50k`);
  assert.equal(tokenizer.decode(tokenizer.encode(text(50_000))), text(50_000));
});

// --- models derived from the fixture, to exercise settings the fixture does not use -------------------------

/** Protobuf writer for test models (field numbers of sentencepiece_model.proto). */
const varint = (n: number): number[] => {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
};
const key = (field: number, wire: number): number[] => varint(field * 8 + wire);
const lengthDelimited = (field: number, bytes: number[]): number[] => [...key(field, 2), ...varint(bytes.length), ...bytes];
const text = (field: number, s: string): number[] => lengthDelimited(field, [...new TextEncoder().encode(s)]);
const float = (field: number, value: number): number[] => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return [...key(field, 5), ...b];
};
const flag = (field: number, value: number): number[] => [...key(field, 0), ...varint(value)];
const TYPES: Record<string, number> = { normal: 1, unknown: 2, control: 3, user_defined: 4, unused: 5, byte: 6 };

interface Variant {
  pieces?: { piece: string; score: number; type: string }[];
  byteFallback?: boolean;
  removeExtraWhitespaces?: boolean;
  modelType?: number;
  charsmap?: number[];
  denormalizerCharsmap?: number[];
}

function buildModel(v: Variant): Uint8Array {
  const pieces = v.pieces ?? expected.pieces;
  const bytes = pieces.flatMap((p) =>
    lengthDelimited(1, [...text(1, p.piece), ...float(2, p.score), ...flag(3, TYPES[p.type]!)]),
  );
  bytes.push(...lengthDelimited(2, [...flag(3, v.modelType ?? 2), ...flag(35, v.byteFallback === false ? 0 : 1)]));
  bytes.push(
    ...lengthDelimited(3, [
      ...text(1, 'identity'),
      ...(v.charsmap ? lengthDelimited(2, v.charsmap) : []),
      ...flag(3, 1),
      ...flag(4, v.removeExtraWhitespaces ? 1 : 0),
    ]),
  );
  if (v.denormalizerCharsmap) bytes.push(...lengthDelimited(5, lengthDelimited(2, v.denormalizerCharsmap)));
  return Uint8Array.from(bytes);
}

const pieceStrings = (tok: SentencePieceTokenizer, s: string): string[] =>
  tok.encode(s, { bos: false }).map((id) => tok.idToPiece(id));

test('a model rebuilt from the fixture pieces encodes identically', () => {
  const rebuilt = SentencePieceTokenizer.fromBytes(buildModel({}));
  for (const c of expected.encode) assert.deepEqual(rebuilt.encode(c.text, { bos: false }), c.ids);
});

test('without byte fallback, a run of unknown characters becomes one <unk>', () => {
  const tok = SentencePieceTokenizer.fromBytes(
    buildModel({ pieces: expected.pieces.filter((p) => p.type !== 'byte'), byteFallback: false }),
  );
  // '识' and '别' are not in the vocabulary (the fixture byte-encodes them).
  assert.deepEqual(pieceStrings(tok, '图像识别'), ['▁', '图', '像', '<unk>']);
  assert.equal(tok.decode(tok.encode('图像识别')), '图像 \u2047 ');
});

test('remove_extra_whitespaces drops leading, trailing and repeated spaces', () => {
  const tok = SentencePieceTokenizer.fromBytes(buildModel({ removeExtraWhitespaces: true }));
  assert.deepEqual(tok.encode('   Hello   world  '), tokenizer.encode('Hello world'));
  assert.deepEqual(tok.encode('   '), [tok.bosId]);
  // Every leading '▁' is dropped when decoding, not only the first.
  assert.equal(tok.decode([321, 321, 288]), 'A');
});

test('user-defined symbols stay whole; unused pieces are split back', () => {
  const withImage = [...expected.pieces, { id: 400, piece: '<image>', score: 0, type: 'user_defined' }];
  const tok = SentencePieceTokenizer.fromBytes(buildModel({ pieces: withImage }));
  assert.deepEqual(pieceStrings(tok, 'a<image>b'), ['▁a', '<image>', 'b']);

  const theId = tokenizer.pieceToId('▁the')!;
  const unused = expected.pieces.map((p) => (p.id === theId ? { ...p, type: 'unused' } : p));
  const tokUnused = SentencePieceTokenizer.fromBytes(buildModel({ pieces: unused }));
  const pieces = pieceStrings(tokUnused, 'the');
  assert.ok(!pieces.includes('▁the') && pieces.length > 1, pieces.join(' '));
  assert.equal(pieces.join(''), '▁the');
});

test('corrupt or unsupported models are refused with InputError', () => {
  const refuses = (bytes: Uint8Array, pattern: RegExp): void => {
    assert.throws(() => SentencePieceTokenizer.fromBytes(bytes, {}, 'm.model'), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match(err.message, pattern);
      return true;
    });
  };
  refuses(modelBytes.subarray(0, 1000), /^m\.model: not a SentencePiece model \(.*offset \d+/);
  refuses(Uint8Array.from([0xff, 0xff, 0xff]), /m\.model: not a SentencePiece model/);
  refuses(new Uint8Array(0), /no pieces/);
  refuses(buildModel({ modelType: 1 }), /model type 1 is not supported/);
  refuses(buildModel({ charsmap: [1, 2, 3, 4, 5] }), /precompiled character map/);
  refuses(buildModel({ denormalizerCharsmap: [1, 2, 3, 4, 5] }), /denormaliser character map/);
  refuses(buildModel({ byteFallback: false }), /byte_fallback is false/);
});
