// The tiny models' tokenizer: a SentencePiece BPE tokenizer.model learnt from the tasks' text, written in the
// protobuf layout egret's reader reads, with LLaMA's special ids and byte fallback; it round-trips the tasks' text
// (of other seeds than the one it learnt from) and any other text, and spells the small-print codes one character
// per piece.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBpePieces } from '../src/lab/bpe-train.js';
import { labTexts, labTokenizerModel } from '../src/lab/datasets.js';
import { smallPrintText } from '../src/lab/smallprint.js';
import { loadTokenizer } from '../src/text/load.js';
import { parseSentencePieceModel, PieceType } from '../src/text/sentencepiece-model.js';
import { encodeSentencePieceModel } from '../src/text/sentencepiece-write.js';
import { SentencePieceTokenizer } from '../src/text/sentencepiece.js';
import { assertInputError, egret } from './helpers/cli.js';

let dir: string;
let model: Uint8Array;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'egret-lab-tok-'));
  model = labTokenizerModel(0, 300, 1024);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the SentencePiece writer writes what the reader reads', () => {
  const pieces = [
    { piece: '<unk>', score: 0, type: PieceType.Unknown },
    { piece: '<s>', score: 0, type: PieceType.Control },
    { piece: '</s>', score: 0, type: PieceType.Control },
    { piece: '\u2581the', score: -0, type: PieceType.Normal },
    { piece: 'é', score: -1.5, type: PieceType.Normal },
  ];
  const parsed = parseSentencePieceModel(encodeSentencePieceModel({ pieces, byteFallback: false, splitDigits: true, unkId: 0, bosId: 1, eosId: 2, removeExtraWhitespaces: true }), 'x');
  assert.deepEqual(parsed.pieces, pieces);
  assert.deepEqual(
    [parsed.modelType, parsed.byteFallback, parsed.bosId, parsed.eosId, parsed.normalizerName, parsed.addDummyPrefix, parsed.removeExtraWhitespaces, parsed.escapeWhitespaces],
    [2, false, 1, 2, 'identity', true, true, true],
  );
});

test("the lab's tokenizer.model: LLaMA's layout, loaded by egret's own loader, deterministic", async () => {
  const file = join(dir, 'tokenizer.model');
  writeFileSync(file, model);
  const tokenizer = await loadTokenizer(file);
  assert.equal(tokenizer.vocabSize, 1024);
  assert.deepEqual([tokenizer.unkId, tokenizer.bosId, tokenizer.eosId], [0, 1, 2]);
  assert.deepEqual([0, 1, 2, 3, 258].map((id) => tokenizer.idToPiece(id)), ['<unk>', '<s>', '</s>', '<0x00>', '<0xFF>']);
  const parsed = parseSentencePieceModel(model, file);
  assert.equal(parsed.byteFallback, true);
  assert.equal(parsed.removeExtraWhitespaces, false);
  assert.deepEqual(labTokenizerModel(0, 300, 1024), model);
  assert.notDeepEqual(labTokenizerModel(1, 300, 1024), model);
  // Learnt merges come first, scored -0, -1, ...: the most frequent pair first, ties to the union that sorts first.
  const pieces = trainBpePieces(['the cat the cat the hat'], { vocabSize: 400 });
  assert.deepEqual(pieces.slice(259, 263).map((p) => [p.piece, p.score]), [['at', -0], ['he', -1], ['the', -2], ['\u2581the', -3]]);
});

test("encode and decode round-trip the tasks' text and any other, and codes are spelt a character per piece", () => {
  const tokenizer = SentencePieceTokenizer.fromBytes(model);
  let chars = 0, tokens = 0;
  for (const text of labTexts(7, 150)) {
    const ids = tokenizer.encode(text, { bos: true, eos: true });
    assert.equal(ids[0], 1);
    assert.equal(ids.at(-1), 2);
    assert.equal(tokenizer.decode(ids), text);
    // English text needs no byte pieces (ids 3..258); '°' is learnt as a piece of its own.
    assert.ok(ids.every((id) => id < 3 || id > 258), JSON.stringify(text));
    chars += text.length;
    tokens += ids.length - 2;
  }
  assert.ok(chars / tokens > 3, `${(chars / tokens).toFixed(2)} characters per token`);
  for (const text of ['naïve café ☃ 日本語', '  two  spaces\tand a tab ', 'ÆØÅ 🦅']) assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
  assert.ok(tokenizer.encode('🦅', { bos: false }).some((id) => id >= 3 && id <= 258), 'byte fallback');
  for (let index = 0; index < 50; index++) {
    const { code } = smallPrintText(9, index);
    const pieces = tokenizer.encode(code, { bos: false }).map((id) => tokenizer.idToPiece(id).replace(/^\u2581/, '')).filter((p) => p !== '');
    assert.deepEqual(pieces, [...code], code);
  }
});

test('egret lab tokenizer writes the model; egret tokenize reads it; an existing file is not overwritten', async () => {
  const file = join(dir, 'cli.model');
  const run = await egret('lab', 'tokenizer', '--out', file, '--count', '60', '--vocab-size', '600');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(new Uint8Array(readFileSync(file)), labTokenizerModel(0, 60, 600));
  const ids = await egret('tokenize', '--model', file, '--text', 'What is the code?', '--json');
  assert.equal(ids.code, 0, ids.stderr);
  assert.deepEqual(JSON.parse(ids.stdout).ids, SentencePieceTokenizer.fromBytes(labTokenizerModel(0, 60, 600)).encode('What is the code?'));
  assertInputError(await egret('lab', 'tokenizer', '--out', file), /exists; give a new file/);
  assertInputError(await egret('lab', 'tokenizer', '--out', join(dir, 'x.model'), '--vocab-size', '12'), /--vocab-size must be an integer from 400/);
});
