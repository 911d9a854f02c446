/**
 * Parses SentencePiece's ModelProto (a `tokenizer.model` file) by hand. Field numbers follow
 * google/sentencepiece src/sentencepiece_model.proto (v0.1.97, the version LLaVA and LaVIN tokenise with).
 */
import { InputError } from '../errors.js';
import { ProtobufError, WireType, decodeUtf8, readFields, type Field } from './protobuf-reader.js';

export enum PieceType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export interface ModelPiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  pieces: ModelPiece[];
  /** TrainerSpec.ModelType: 1 unigram, 2 BPE, 3 word, 4 char. */
  modelType: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  bosId: number;
  eosId: number;
  unkSurface: string;
  normalizerName: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  /** Decoding rewrites text through denormalizer_spec's character map when it has one. */
  hasDenormalizer: boolean;
}

export const MODEL_TYPE_BPE = 2;

/** Parses the bytes of a tokenizer.model; `where` names the source in error messages. */
export function parseSentencePieceModel(bytes: Uint8Array, where: string): SentencePieceModel {
  // Defaults are the proto's declared defaults.
  const model: SentencePieceModel = {
    pieces: [],
    modelType: 1,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    bosId: 1,
    eosId: 2,
    unkSurface: ' \u2047 ',
    normalizerName: '',
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
    hasDenormalizer: false,
  };
  try {
    for (const f of readFields(bytes)) {
      if (f.field === 1) model.pieces.push(parsePiece(expect(f, WireType.Bytes)));
      else if (f.field === 2) parseTrainerSpec(expect(f, WireType.Bytes), model);
      else if (f.field === 3) parseNormalizerSpec(expect(f, WireType.Bytes), model);
      else if (f.field === 5) model.hasDenormalizer = hasCharsmap(expect(f, WireType.Bytes));
    }
  } catch (err) {
    if (err instanceof ProtobufError) throw new InputError(`${where}: not a SentencePiece model (${err.message})`);
    throw err;
  }
  if (model.pieces.length === 0) throw new InputError(`${where}: not a SentencePiece model (no pieces)`);
  return model;
}

function expect(f: Field, wireType: WireType): Field {
  if (f.wireType !== wireType) {
    throw new ProtobufError(`field ${f.field} at offset ${f.offset} has wire type ${f.wireType}, expected ${wireType}`);
  }
  return f;
}

function str(f: Field): string {
  return decodeUtf8(expect(f, WireType.Bytes).bytes, f.bytesOffset);
}

function parsePiece(msg: Field): ModelPiece {
  const out: ModelPiece = { piece: '', score: 0, type: PieceType.Normal };
  for (const f of readFields(msg.bytes, msg.bytesOffset)) {
    if (f.field === 1) out.piece = str(f);
    else if (f.field === 2) out.score = expect(f, WireType.Fixed32).float;
    else if (f.field === 3) out.type = expect(f, WireType.Varint).int;
  }
  if (out.piece === '') throw new ProtobufError(`empty piece at offset ${msg.offset}`);
  if (!(out.type in PieceType)) throw new ProtobufError(`piece '${out.piece}' has unknown type ${out.type}`);
  return out;
}

function parseTrainerSpec(msg: Field, model: SentencePieceModel): void {
  for (const f of readFields(msg.bytes, msg.bytesOffset)) {
    switch (f.field) {
      case 3: model.modelType = expect(f, WireType.Varint).int; break;
      case 24: model.treatWhitespaceAsSuffix = expect(f, WireType.Varint).int !== 0; break;
      case 35: model.byteFallback = expect(f, WireType.Varint).int !== 0; break;
      case 41: model.bosId = expect(f, WireType.Varint).int; break;
      case 42: model.eosId = expect(f, WireType.Varint).int; break;
      case 44: model.unkSurface = str(f); break;
    }
  }
}

function hasCharsmap(msg: Field): boolean {
  for (const f of readFields(msg.bytes, msg.bytesOffset)) if (f.field === 2 && expect(f, WireType.Bytes).bytes.length > 0) return true;
  return false;
}

function parseNormalizerSpec(msg: Field, model: SentencePieceModel): void {
  for (const f of readFields(msg.bytes, msg.bytesOffset)) {
    switch (f.field) {
      case 1: model.normalizerName = str(f); break;
      case 2: model.precompiledCharsmap = expect(f, WireType.Bytes).bytes; break;
      case 3: model.addDummyPrefix = expect(f, WireType.Varint).int !== 0; break;
      case 4: model.removeExtraWhitespaces = expect(f, WireType.Varint).int !== 0; break;
      case 5: model.escapeWhitespaces = expect(f, WireType.Varint).int !== 0; break;
    }
  }
}
