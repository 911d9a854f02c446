import type { StreamDecoder } from './decoder.js';

export interface EncodeOptions {
  /** Prepend BOS; default: the tokenizer's own setting (tokenizer_config.json add_bos_token, else true). */
  bos?: boolean;
  /** Append EOS; default: add_eos_token, else false. */
  eos?: boolean;
}

/** A text tokenizer as the models see it. Ids beyond the base vocabulary are added tokens (e.g. `<image>`). */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[]): string;
  /** A decoder for generated ids, one at a time. */
  streamDecoder(): StreamDecoder;
  idToPiece(id: number): string;
  /** The id of a piece, or undefined when it is not in the vocabulary. */
  pieceToId(piece: string): number | undefined;
}
