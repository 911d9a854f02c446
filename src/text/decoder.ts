/**
 * ids → text with SentencePiece's decoding rules (src/sentencepiece_processor.cc `DecodeSentencePieceText`,
 * v0.1.97): control ids are invisible, unknown ids show the unk surface, runs of byte pieces are joined and
 * read as UTF-8 with U+FFFD for each byte that does not start a valid character, '▁' becomes ' ', and the
 * first '▁' of the text (the dummy prefix) is dropped. `decode` is a StreamDecoder run to the end, so streamed
 * pieces always concatenate to the full decode.
 */

/** What one id contributes to the text. */
export type PieceSurface =
  | { kind: 'byte'; byte: number }
  | { kind: 'control' }
  | { kind: 'unknown'; text: string }
  | { kind: 'text'; piece: string };

export interface DecodeRules {
  surfaceOf(id: number): PieceSurface;
  /** add_dummy_prefix || remove_extra_whitespaces: a leading '▁' at the start of the text is not a real space. */
  stripsLeadingSpace: boolean;
  /** remove_extra_whitespaces: every leading '▁' piece is dropped until some text has appeared. */
  removeExtraWhitespaces: boolean;
}

const SPACE_SYMBOL = '\u2581';

export class StreamDecoder {
  private readonly pendingBytes: number[] = [];
  private isBosWs = true;
  private bosWsSeen = false;
  private produced = false;

  constructor(private readonly rules: DecodeRules) {}

  /** The whole text of `ids` (a fresh decoder run to the end). */
  decodeAll(ids: readonly number[]): string {
    let text = '';
    for (const id of ids) text += this.push(id);
    return text + this.flush();
  }

  /** Adds one id; returns the text that is final now (possibly ''): never half of a UTF-8 character. */
  push(id: number): string {
    const surface = this.rules.surfaceOf(id);
    if (surface.kind === 'byte') {
      this.pendingBytes.push(surface.byte);
      return this.note(this.takeBytes(false));
    }
    // Any other piece ends the byte run: what is still pending decodes now, incomplete bytes as U+FFFD.
    const before = this.note(this.takeBytes(true));
    if (this.bosWsSeen || this.produced) this.isBosWs = false;
    let text = '';
    this.bosWsSeen = false;
    if (surface.kind === 'unknown') text = surface.text;
    else if (surface.kind === 'text') {
      let piece = surface.piece;
      if (this.isBosWs && this.rules.stripsLeadingSpace && piece.startsWith(SPACE_SYMBOL)) {
        piece = piece.slice(SPACE_SYMBOL.length);
        this.bosWsSeen = !this.rules.removeExtraWhitespaces;
      }
      text = piece.replaceAll(SPACE_SYMBOL, ' ');
    }
    return before + this.note(text);
  }

  /** Ends the stream: returns what was held back (incomplete UTF-8 becomes U+FFFD per byte). */
  flush(): string {
    return this.note(this.takeBytes(true));
  }

  private note(text: string): string {
    if (text !== '') this.produced = true;
    return text;
  }

  private takeBytes(final: boolean): string {
    const bytes = this.pendingBytes;
    let out = '';
    let i = 0;
    while (i < bytes.length) {
      const need = sequenceLength(bytes[i]!);
      if (!final && i + need > bytes.length && allTrailBytes(bytes, i + 1)) break; // may still complete
      const cp = decodeUtf8At(bytes, i, need);
      if (cp < 0) {
        out += '\uFFFD';
        i += 1;
      } else {
        out += String.fromCodePoint(cp);
        i += need;
      }
    }
    bytes.splice(0, i);
    return out;
  }
}

/** Length announced by a lead byte (1 for ASCII and for bytes that cannot start a sequence). */
function sequenceLength(lead: number): number {
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 1;
}

function isTrail(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

function allTrailBytes(bytes: number[], from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (!isTrail(bytes[i]!)) return false;
  return true;
}

/**
 * One code point at `i`, or -1 where SentencePiece's DecodeUTF8 (src/util.cc) rejects it: truncated, bad trail
 * byte, overlong, surrogate or above U+10FFFF.
 */
function decodeUtf8At(bytes: number[], i: number, need: number): number {
  const lead = bytes[i]!;
  if (need === 1) return lead < 0x80 ? lead : -1;
  if (i + need > bytes.length) return -1;
  let cp = lead & (0x7f >> need);
  for (let k = 1; k < need; k++) {
    const b = bytes[i + k]!;
    if (!isTrail(b)) return -1;
    cp = (cp << 6) | (b & 0x3f);
  }
  const min = need === 2 ? 0x80 : need === 3 ? 0x800 : 0x10000;
  if (cp < min || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff) return -1;
  return cp;
}
