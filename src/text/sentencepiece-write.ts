/**
 * Writes a SentencePiece ModelProto (a `tokenizer.model` file): the fields sentencepiece-model.ts reads, with the
 * field numbers of google/sentencepiece src/sentencepiece_model.proto.
 */
import { Message } from '../graph/protobuf.js';
import { MODEL_TYPE_BPE, type ModelPiece } from './sentencepiece-model.js';

export interface SentencePieceModelSpec {
  /** In id order; scores rank merges (a higher score merges first). */
  pieces: readonly ModelPiece[];
  byteFallback: boolean;
  /** TrainerSpec.split_digits: recorded for readers; digits stay single pieces because no piece joins them. */
  splitDigits: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  /** NormalizerSpec of an identity normaliser: LLaMA's tokenizer keeps extra spaces (false). */
  removeExtraWhitespaces: boolean;
}

/** The model file of a BPE model with an identity normaliser, a dummy prefix and spaces written as '▁'. */
export function encodeSentencePieceModel(spec: SentencePieceModelSpec): Uint8Array {
  const model = new Message();
  for (const { piece, score, type } of spec.pieces) model.message(1, new Message().string(1, piece).float(2, score).varint(3, type));
  const trainer = new Message()
    .varint(3, MODEL_TYPE_BPE)
    .varint(4, spec.pieces.length)
    .varint(25, spec.splitDigits ? 1 : 0)
    .varint(35, spec.byteFallback ? 1 : 0)
    .varint(40, spec.unkId)
    .varint(41, spec.bosId)
    .varint(42, spec.eosId)
    .varint(43, -1); // pad_id: none
  model.message(2, trainer);
  const normalizer = new Message()
    .string(1, 'identity')
    .varint(3, 1) // add_dummy_prefix
    .varint(4, spec.removeExtraWhitespaces ? 1 : 0)
    .varint(5, 1); // escape_whitespaces
  model.message(3, normalizer);
  return model.encode();
}
