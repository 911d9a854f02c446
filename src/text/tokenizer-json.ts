/**
 * HF fast-tokenizer files (`tokenizer.json`) of the LLaMA family: a BPE model with byte fallback over '▁'-escaped
 * text. Encoding follows HF tokenizers: added tokens are matched in the raw text first, every other segment is
 * normalised on its own (Prepend / Replace normalisers, or the Metaspace pre-tokenizer), then BPE merges by rank
 * (tokenizers/src/models/bpe/model.rs `merge_word`). Decoding uses SentencePiece's rules, which LLaMA's decoder chain
 * (Replace '▁'→' ', ByteFallback, Fuse, Strip one leading space) reproduces except on invalid UTF-8: there HF writes
 * U+FFFD for every byte of the run, SentencePiece only for the bad bytes. Other tokenizer.json kinds are refused.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { splitOnTokens, type TextToken } from './added-tokens.js';
import { bpeMerge, type InitialSymbol } from './bpe-merge.js';
import { StreamDecoder, type PieceSurface } from './decoder.js';
import type { EncodeOptions, Tokenizer } from './tokenizer.js';

const SPACE_SYMBOL = '\u2581';
const utf8Encoder = new TextEncoder();

export interface TokenizerJsonOptions {
  addBos?: boolean;
  addEos?: boolean;
  bosToken?: string;
  eosToken?: string;
}

type Json = Record<string, unknown>;

/** One text transformation applied to each segment between added tokens. */
type Step = { kind: 'prepend'; text: string } | { kind: 'replace'; from: string; to: string } | MetaspaceStep;

interface MetaspaceStep {
  kind: 'metaspace';
  replacement: string;
  prepend: 'always' | 'first' | 'never';
  split: boolean;
}

export class TokenizerJson implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  private readonly vocab = new Map<string, number>();
  private readonly pieces: string[] = [];
  private readonly mergeRanks = new Map<string, number>();
  private readonly byteIds: (number | undefined)[] = [];
  private readonly byteOfId = new Map<number, number>();
  private readonly special = new Set<number>();
  /** Added tokens, longest first, so that the longest one matches. */
  /** Longest first (splitOnTokens). */
  private readonly addedTokens: TextToken[] = [];
  private readonly steps: Step[];
  private readonly fuseUnk: boolean;
  private readonly stripsLeadingSpace: boolean;

  private constructor(json: Json, private readonly where: string, private readonly options: TokenizerJsonOptions) {
    const model = object(json['model'], 'model', where);
    if (model['type'] !== 'BPE') throw new InputError(`${where}: model type ${String(model['type'])} is not supported (only BPE)`);
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix', 'dropout']) {
      if (model[key]) throw new InputError(`${where}: model.${key} is not supported`);
    }
    if (model['ignore_merges']) throw new InputError(`${where}: model.ignore_merges is not supported`);
    for (const [piece, id] of Object.entries(object(model['vocab'], 'model.vocab', where))) {
      if (!Number.isInteger(id) || (id as number) < 0) throw new InputError(`${where}: vocab id of '${piece}' is not an index`);
      this.vocab.set(piece, id as number);
      this.pieces[id as number] = piece;
    }
    const merges = model['merges'];
    if (!Array.isArray(merges)) throw new InputError(`${where}: model.merges must be a list`);
    merges.forEach((merge: unknown, rank) => {
      // Older files write "a b", newer ones ["a", "b"].
      const pair = typeof merge === 'string' ? merge.split(' ') : merge;
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((p) => typeof p === 'string')) {
        throw new InputError(`${where}: merge ${rank} is not a pair of pieces`);
      }
      if (!this.vocab.has(pair[0] + pair[1])) throw new InputError(`${where}: merge ${rank} makes '${pair[0] + pair[1]}', not in the vocabulary`);
      const key = `${pair[0]} ${pair[1]}`;
      if (!this.mergeRanks.has(key)) this.mergeRanks.set(key, rank);
    });
    if (model['byte_fallback'] === true) {
      for (let b = 0; b < 256; b++) {
        const id = this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
        this.byteIds[b] = id;
        if (id !== undefined) this.byteOfId.set(id, b);
      }
    }
    this.fuseUnk = model['fuse_unk'] === true;
    const unkToken = model['unk_token'];
    this.unkId = typeof unkToken === 'string' ? this.requireId(unkToken, 'unk_token') : -1;

    const added = json['added_tokens'] ?? [];
    if (!Array.isArray(added)) throw new InputError(`${where}: added_tokens must be a list`);
    for (const token of added as Json[]) {
      const { id, content } = token;
      if (!Number.isInteger(id) || typeof content !== 'string' || content === '') {
        throw new InputError(`${where}: added token ${JSON.stringify(token)} lacks an id or content`);
      }
      if (token['lstrip'] || token['rstrip'] || token['single_word']) {
        throw new InputError(`${where}: added token '${content}' uses lstrip/rstrip/single_word, which is not supported`);
      }
      this.addedTokens.push({ content, id: id as number });
      this.pieces[id as number] ??= content;
      if (token['special'] === true) this.special.add(id as number);
    }
    this.addedTokens.sort((a, b) => b.content.length - a.content.length);

    this.steps = [...this.normalizerSteps(json['normalizer']), ...this.preTokenizerSteps(json['pre_tokenizer'])];
    this.stripsLeadingSpace = this.decoderStripsLeadingSpace(json['decoder']);
    this.vocabSize = this.pieces.length;
    this.bosId = this.requireId(options.bosToken ?? '<s>', 'bos_token');
    this.eosId = this.requireId(options.eosToken ?? '</s>', 'eos_token');
  }

  static async fromFile(path: string, options: TokenizerJsonOptions = {}): Promise<TokenizerJson> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new InputError(`cannot read tokenizer ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new InputError(`${path}: invalid JSON (${(err as Error).message})`);
    }
    return TokenizerJson.fromJson(json, options, path);
  }

  static fromJson(json: unknown, options: TokenizerJsonOptions = {}, where = 'tokenizer.json'): TokenizerJson {
    return new TokenizerJson(object(json, 'the file', where), where, options);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.bos ?? this.options.addBos ?? true) ids.push(this.bosId);
    splitOnTokens(text, this.addedTokens).forEach((segment, i) => {
      if (typeof segment === 'number') ids.push(segment);
      else for (const word of this.normalize(segment, i === 0)) ids.push(...this.encodeWord(word));
    });
    if (options.eos ?? this.options.addEos ?? false) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[]): string {
    return this.streamDecoder().decodeAll(ids);
  }

  streamDecoder(): StreamDecoder {
    return new StreamDecoder({
      surfaceOf: (id) => this.surfaceOf(id),
      stripsLeadingSpace: this.stripsLeadingSpace,
      removeExtraWhitespaces: false,
    });
  }

  idToPiece(id: number): string {
    const piece = this.pieces[id];
    if (piece === undefined) throw new InputError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    return piece;
  }

  pieceToId(piece: string): number | undefined {
    return this.vocab.get(piece) ?? this.addedTokens.find((t) => t.content === piece)?.id;
  }

  private surfaceOf(id: number): PieceSurface {
    const piece = this.idToPiece(id);
    if (this.special.has(id)) return { kind: 'control' };
    const byte = this.byteOfId.get(id);
    if (byte !== undefined) return { kind: 'byte', byte };
    return { kind: 'text', piece };
  }

  private requireId(piece: string, what: string): number {
    const id = this.vocab.get(piece) ?? this.addedTokens.find((t) => t.content === piece)?.id;
    if (id === undefined) throw new InputError(`${this.where}: ${what} '${piece}' is not in the vocabulary`);
    return id;
  }

  /** Applies the normaliser and pre-tokenizer to one segment; returns its words. */
  private normalize(segment: string, first: boolean): string[] {
    let words = [segment];
    for (const step of this.steps) {
      if (step.kind === 'prepend') words = words.map((w) => (w === '' ? w : step.text + w));
      else if (step.kind === 'replace') words = words.map((w) => w.replaceAll(step.from, step.to));
      else words = words.flatMap((w) => metaspace(w, step, first));
    }
    return words.filter((w) => w !== '');
  }

  /** model.rs merge_word: known characters, byte-fallback pieces, or <unk> (fused when fuse_unk), then merges. */
  private encodeWord(word: string): number[] {
    const symbols: InitialSymbol[] = [];
    const fixedIds = new Map<number, number>();
    let unknown = '';
    const flushUnknown = (): void => {
      if (unknown === '') return;
      fixedIds.set(symbols.length, this.unkId);
      symbols.push({ text: unknown, frozen: true });
      unknown = '';
    };
    for (const char of word) {
      if (this.vocab.has(char)) {
        flushUnknown();
        symbols.push({ text: char, frozen: false });
        continue;
      }
      const bytes = [...utf8Encoder.encode(char)].map((b) => this.byteIds[b]);
      if (bytes.every((id) => id !== undefined)) {
        flushUnknown();
        for (const id of bytes as number[]) {
          fixedIds.set(symbols.length, id);
          symbols.push({ text: this.pieces[id]!, frozen: true });
        }
        continue;
      }
      if (this.unkId < 0) throw new InputError(`${this.where}: character '${char}' is not in the vocabulary and there is no unk_token`);
      if (!this.fuseUnk) flushUnknown();
      unknown += char;
    }
    flushUnknown();
    const pieces = bpeMerge(symbols, {
      mergeScore: (left, right) => {
        const rank = this.mergeRanks.get(`${left} ${right}`);
        return rank === undefined ? undefined : -rank;
      },
    });
    // Each output piece is a run of initial symbols; frozen ones (bytes, <unk>) stand alone and keep their id.
    let next = 0;
    return pieces.map((piece) => {
      const fixed = fixedIds.get(next);
      for (let length = 0; length < piece.length; next++) length += symbols[next]!.text.length;
      return fixed ?? this.vocab.get(piece)!;
    });
  }

  private normalizerSteps(spec: unknown): Step[] {
    if (spec === null || spec === undefined) return [];
    const n = object(spec, 'normalizer', this.where);
    switch (n['type']) {
      case 'Sequence':
        return (n['normalizers'] as unknown[]).flatMap((inner) => this.normalizerSteps(inner));
      case 'Prepend':
        return [{ kind: 'prepend', text: String(n['prepend']) }];
      case 'Replace': {
        const pattern = object(n['pattern'], 'normalizer.pattern', this.where);
        if (typeof pattern['String'] !== 'string') throw new InputError(`${this.where}: only string Replace patterns are supported`);
        return [{ kind: 'replace', from: pattern['String'], to: String(n['content']) }];
      }
      default:
        throw new InputError(`${this.where}: normalizer ${String(n['type'])} is not supported`);
    }
  }

  private preTokenizerSteps(spec: unknown): Step[] {
    if (spec === null || spec === undefined) return [];
    const p = object(spec, 'pre_tokenizer', this.where);
    if (p['type'] !== 'Metaspace') throw new InputError(`${this.where}: pre-tokenizer ${String(p['type'])} is not supported`);
    const scheme = p['prepend_scheme'] ?? (p['add_prefix_space'] === false ? 'never' : 'always');
    if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') {
      throw new InputError(`${this.where}: Metaspace prepend_scheme ${String(scheme)} is not supported`);
    }
    return [{ kind: 'metaspace', replacement: String(p['replacement'] ?? SPACE_SYMBOL), prepend: scheme, split: p['split'] !== false }];
  }

  /** LLaMA's decoders: Sequence[Replace, ByteFallback, Fuse, Strip(' ', 1, 0)] or Metaspace. */
  private decoderStripsLeadingSpace(spec: unknown): boolean {
    if (spec === null || spec === undefined) return false;
    const d = object(spec, 'decoder', this.where);
    switch (d['type']) {
      case 'Sequence':
        return (d['decoders'] as unknown[]).map((inner) => this.decoderStripsLeadingSpace(inner)).includes(true);
      case 'Metaspace':
        return (d['prepend_scheme'] ?? (d['add_prefix_space'] === false ? 'never' : 'always')) !== 'never';
      case 'Strip':
        return d['content'] === ' ' && Number(d['start']) >= 1;
      case 'Replace':
      case 'ByteFallback':
      case 'Fuse':
        return false;
      default:
        throw new InputError(`${this.where}: decoder ${String(d['type'])} is not supported`);
    }
  }
}

/**
 * tokenizers/src/pre_tokenizers/metaspace.rs: spaces become the replacement character, which is prepended unless
 * the text already starts with it ('first': only for the segment at the start of the input), and with `split` the
 * text is cut before every replacement character.
 */
function metaspace(text: string, step: MetaspaceStep, first: boolean): string[] {
  let out = text.replaceAll(' ', step.replacement);
  const prepend = step.prepend === 'always' || (step.prepend === 'first' && first);
  if (prepend && out !== '' && !out.startsWith(step.replacement)) out = step.replacement + out;
  if (!step.split) return [out];
  return out.split(new RegExp(`(?=${step.replacement.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})`, 'u'));
}

function object(value: unknown, what: string, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${where}: ${what} must be a JSON object`);
  return value as Json;
}
