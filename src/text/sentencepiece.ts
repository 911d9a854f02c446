/**
 * SentencePiece BPE tokenizer read straight from `tokenizer.model`, reproducing sentencepiece 0.1.97 (the
 * HF slow LlamaTokenizer with legacy=True that LLaVA uses, and what LaVIN calls directly).
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { longestFirst, splitOnTokens, type TextToken } from './added-tokens.js';
import { bpeMerge, type InitialSymbol } from './bpe-merge.js';
import { StreamDecoder, type PieceSurface } from './decoder.js';
import { MODEL_TYPE_BPE, PieceType, parseSentencePieceModel, type SentencePieceModel } from './sentencepiece-model.js';
import type { EncodeOptions, Tokenizer } from './tokenizer.js';

const SPACE_SYMBOL = '\u2581';
const utf8Encoder = new TextEncoder();

export interface SentencePieceOptions {
  /** Default for `encode`'s bos option (tokenizer_config.json add_bos_token). */
  addBos?: boolean;
  /** Default for `encode`'s eos option (tokenizer_config.json add_eos_token). */
  addEos?: boolean;
  /** Extra tokens past the model's pieces (added_tokens.json), e.g. `<image>` → 400. Invisible when decoded. */
  addedTokens?: ReadonlyMap<string, number>;
  /**
   * Encode as HF's slow LlamaTokenizer (legacy=True) does rather than as bare SentencePiece: the special tokens
   * `<s>`, `</s>`, `<unk>` and the added tokens written in the text are their own ids, and the text between them
   * is encoded piece by piece (each with its own dummy prefix). LLaVA's vicuna_v1 history relies on it: its `</s>`
   * separator is EOS. Bare SentencePiece (LaVIN's tokenizer) reads `</s>` as four characters.
   */
  specialTokensInText?: boolean;
}

export class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  /** Pieces that merges can produce: normal, user-defined, unused (model_interface.cc `pieces_`). */
  private readonly mergeable = new Map<string, number>();
  /** Control, unknown and byte pieces (model_interface.cc `reserved_id_map_`). */
  private readonly reserved = new Map<string, number>();
  private readonly byteIds: number[] = [];
  private readonly userDefined = new Set<string>();
  /** Distinct lengths of the user-defined symbols, longest first, for longest-match lookup. */
  private readonly userDefinedLengths: number[];
  private readonly added: ReadonlyMap<string, number>;
  private readonly addedById = new Map<number, string>();
  /** The tokens that encode splits the text on (SentencePieceOptions.specialTokensInText), longest first. */
  private readonly textTokens: TextToken[] = [];

  private constructor(private readonly model: SentencePieceModel, where: string, options: SentencePieceOptions) {
    if (model.modelType !== MODEL_TYPE_BPE) {
      throw new InputError(`${where}: SentencePiece model type ${model.modelType} is not supported (only BPE, type 2)`);
    }
    if (model.precompiledCharsmap.length > 0) {
      throw new InputError(
        `${where}: normaliser '${model.normalizerName}' uses a precompiled character map, which is not supported ` +
          `(LLaMA-family tokenizers use 'identity')`,
      );
    }
    if (model.hasDenormalizer) throw new InputError(`${where}: a denormaliser character map is not supported`);
    if (model.treatWhitespaceAsSuffix) throw new InputError(`${where}: treat_whitespace_as_suffix is not supported`);
    let unkId: number | undefined;
    model.pieces.forEach(({ piece, type }, id) => {
      const isMergeable = type === PieceType.Normal || type === PieceType.UserDefined || type === PieceType.Unused;
      const map = isMergeable ? this.mergeable : this.reserved;
      if (map.has(piece)) throw new InputError(`${where}: piece '${piece}' appears twice (ids ${map.get(piece)}, ${id})`);
      map.set(piece, id);
      if (type === PieceType.UserDefined) this.userDefined.add(piece);
      if (type === PieceType.Unknown) {
        if (unkId !== undefined) throw new InputError(`${where}: two unknown pieces (ids ${unkId}, ${id})`);
        unkId = id;
      }
      if (type === PieceType.Byte) {
        if (!model.byteFallback) throw new InputError(`${where}: byte piece '${piece}' found although byte_fallback is false`);
        const match = /^<0x([0-9A-F]{2})>$/.exec(piece);
        if (!match) throw new InputError(`${where}: byte piece ${id} is '${piece}', expected <0xXX>`);
        this.byteIds[parseInt(match[1]!, 16)] = id;
      }
    });
    if (model.byteFallback && this.byteIds.filter((id) => id !== undefined).length !== 256) {
      throw new InputError(`${where}: byte_fallback is set but the model lacks some of the 256 <0xXX> pieces`);
    }
    this.userDefinedLengths = [...new Set([...this.userDefined].map((u) => u.length))].sort((a, b) => b - a);
    if (unkId === undefined) throw new InputError(`${where}: the model has no unknown piece`);
    this.unkId = unkId;
    this.bosId = model.bosId;
    this.eosId = model.eosId;
    this.addBos = options.addBos ?? true;
    this.addEos = options.addEos ?? false;
    this.added = options.addedTokens ?? new Map();
    let size = model.pieces.length;
    for (const [content, id] of this.added) {
      if (id < model.pieces.length && model.pieces[id]!.piece !== content) {
        throw new InputError(`added token '${content}' = ${id} collides with piece '${model.pieces[id]!.piece}'`);
      }
      this.addedById.set(id, content);
      size = Math.max(size, id + 1);
    }
    this.vocabSize = size;
    if (options.specialTokensInText) {
      const specials = [this.bosId, this.eosId, this.unkId].filter((id) => id >= 0 && id < model.pieces.length);
      this.textTokens = longestFirst([...specials.map((id) => ({ content: model.pieces[id]!.piece, id })), ...[...this.added].map(([content, id]) => ({ content, id }))]);
    }
  }

  static async fromFile(path: string, options: SentencePieceOptions = {}): Promise<SentencePieceTokenizer> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new InputError(`cannot read tokenizer ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return SentencePieceTokenizer.fromBytes(bytes, options, path);
  }

  static fromBytes(bytes: Uint8Array, options: SentencePieceOptions = {}, where = 'tokenizer.model'): SentencePieceTokenizer {
    return new SentencePieceTokenizer(parseSentencePieceModel(bytes, where), where, options);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.textTokens.length === 0 ? this.encodeBody(text)
      : splitOnTokens(text, this.textTokens).flatMap((part) => (typeof part === 'number' ? [part] : this.encodeBody(part)));
    if (options.bos ?? this.addBos) ids.unshift(this.special('bos', this.bosId));
    if (options.eos ?? this.addEos) ids.push(this.special('eos', this.eosId));
    return ids;
  }

  decode(ids: readonly number[]): string {
    return this.streamDecoder().decodeAll(ids);
  }

  streamDecoder(): StreamDecoder {
    const { addDummyPrefix, removeExtraWhitespaces } = this.model;
    return new StreamDecoder({
      surfaceOf: (id) => this.surfaceOf(id),
      stripsLeadingSpace: addDummyPrefix || removeExtraWhitespaces,
      removeExtraWhitespaces,
    });
  }

  idToPiece(id: number): string {
    const piece = this.model.pieces[id]?.piece ?? this.addedById.get(id);
    if (piece === undefined) throw new InputError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    return piece;
  }

  pieceToId(piece: string): number | undefined {
    return this.reserved.get(piece) ?? this.mergeable.get(piece) ?? this.added.get(piece);
  }

  private special(name: string, id: number): number {
    if (id < 0 || id >= this.model.pieces.length) throw new InputError(`this tokenizer has no ${name} piece (${name}_id ${id})`);
    return id;
  }

  private surfaceOf(id: number): PieceSurface {
    const entry = this.model.pieces[id];
    if (!entry) {
      if (this.addedById.has(id)) return { kind: 'control' };
      throw new InputError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    switch (entry.type) {
      case PieceType.Control:
        return { kind: 'control' };
      case PieceType.Unknown:
        return { kind: 'unknown', text: this.model.unkSurface };
      case PieceType.Byte:
        return { kind: 'byte', byte: parseInt(entry.piece.slice(3, 5), 16) };
      default:
        return { kind: 'text', piece: entry.piece };
    }
  }

  private encodeBody(text: string): number[] {
    const pieces = bpeMerge(this.initialSymbols(this.normalize(text)), {
      mergeScore: (left, right) => {
        const id = this.mergeable.get(left + right);
        return id === undefined ? undefined : this.model.pieces[id]!.score;
      },
      isUnused: (piece) => this.model.pieces[this.mergeable.get(piece) ?? -1]?.type === PieceType.Unused,
    });
    // sentencepiece_processor.cc PopulateSentencePieceText: unknown pieces become their UTF-8 bytes when
    // byte_fallback is on, else consecutive unknown pieces collapse into one <unk>.
    const ids: number[] = [];
    let previousUnknown = false;
    for (const piece of pieces) {
      const id = this.reserved.get(piece) ?? this.mergeable.get(piece) ?? this.unkId;
      const unknown = id === this.unkId;
      if (unknown && this.model.byteFallback) {
        for (const byte of utf8Encoder.encode(piece)) ids.push(this.byteIds[byte]!);
      } else if (!(unknown && previousUnknown)) ids.push(id);
      previousUnknown = unknown;
    }
    return ids;
  }

  /**
   * normalizer.cc `Normalizer::Normalize` for an identity normaliser (no character map): optional removal of
   * leading, trailing and repeated spaces, the dummy-prefix space, and ' ' → '▁'. Digits need no splitting here:
   * split_digits only keeps multi-digit pieces out of the vocabulary at training time.
   */
  private normalize(text: string): string {
    const { addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces } = this.model;
    const space = escapeWhitespaces ? SPACE_SYMBOL : ' ';
    // Lone surrogates cannot be UTF-8; SentencePiece maps malformed input to U+FFFD.
    let input = text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
    if (removeExtraWhitespaces) input = input.replace(/^ +/, '').replace(/ {2,}/g, ' ').replace(/ +$/, '');
    if (input === '') return '';
    if (escapeWhitespaces) input = input.replaceAll(' ', SPACE_SYMBOL);
    return addDummyPrefix ? space + input : input;
  }

  /** Characters (code points), with user-defined symbols matched longest-first and kept whole. */
  private initialSymbols(normalized: string): InitialSymbol[] {
    const symbols: InitialSymbol[] = [];
    let i = 0;
    outer: while (i < normalized.length) {
      for (const length of this.userDefinedLengths) {
        const candidate = normalized.slice(i, i + length);
        if (this.userDefined.has(candidate)) {
          symbols.push({ text: candidate, frozen: true });
          i += length;
          continue outer;
        }
      }
      const cp = normalized.codePointAt(i)!;
      const length = cp > 0xffff ? 2 : 1;
      symbols.push({ text: normalized.slice(i, i + length), frozen: false });
      i += length;
    }
    return symbols;
  }
}
