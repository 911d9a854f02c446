/**
 * Text rendered in the DejaVu Sans that ships in assets/fonts, through sharp (libvips → Pango → FreeType). Only the
 * shipped file is used: fontconfig is pointed at assets/fonts/fonts.conf, which lists no font directory and turns
 * hinting off, so that the pixels are the same on a machine with other fonts, or none.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const FONT_DIR = fileURLToPath(new URL('../../../assets/fonts/', import.meta.url));
export const FONT_FILE = join(FONT_DIR, 'DejaVuSans.ttf');
const FONT_CONFIG = join(FONT_DIR, 'fonts.conf');
const FONT_FAMILY = 'DejaVu Sans';

/**
 * DejaVu Sans 2.37's cap height: 'H' spans y 0..1493 of the 2048 units per em (its glyf entry; the font's OS/2
 * table is version 1, which has no sCapHeight). Digits are as tall; O, 0 and the like overshoot by a few per cent.
 */
export const CAP_HEIGHT_EM = 1493 / 2048;

/** A coverage mask: 0 where the text is not, 255 where it covers the pixel. */
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Pango markup's special characters, escaped (sharp's text is Pango markup). */
function escapeMarkup(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * fontconfig reads FONTCONFIG_FILE once, when libvips first renders text in this process; egret renders text
 * nowhere else, so setting it here, before the first rendering, decides which configuration is used.
 */
function useShippedFontConfig(): void {
  process.env['FONTCONFIG_FILE'] = FONT_CONFIG;
}

/**
 * `text` on one line at a font size of `emPx` pixels per em, cropped to its ink (libvips crops the rendering to the
 * glyphs' ink extents).
 */
export async function renderText(text: string, emPx: number): Promise<Mask> {
  useShippedFontConfig();
  const { data, info } = await sharp({ text: { text: escapeMarkup(text), font: `${FONT_FAMILY} ${emPx.toFixed(3)}px`, fontfile: FONT_FILE, dpi: 72 } })
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The font size whose capital letters are `capHeightPx` pixels tall. */
export function emForCapHeight(capHeightPx: number): number {
  return capHeightPx / CAP_HEIGHT_EM;
}

/** A glyph's horizontal metrics in ems: the pen's advance and its ink's extent from the pen position. */
export interface GlyphMetrics {
  glyph: number;
  advance: number;
  xMin: number;
  xMax: number;
}

interface ShippedFont {
  view: DataView;
  tables: Map<string, number>;
  unitsPerEm: number;
  /** The kern table's pairs: (left glyph << 16 | right glyph) → adjustment in font units. */
  kerning: Map<number, number>;
}

let shipped: ShippedFont | undefined;

/** The shipped font's bytes, table offsets (TrueType's table directory) and kerning pairs, read once. */
function shippedFont(): ShippedFont {
  if (!shipped) {
    const bytes = readFileSync(FONT_FILE);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const tables = new Map<string, number>();
    for (let i = 0; i < view.getUint16(4); i++) tables.set(bytes.toString('latin1', 12 + 16 * i, 16 + 16 * i), view.getUint32(20 + 16 * i));
    shipped = { view, tables, unitsPerEm: view.getUint16(tables.get('head')! + 18), kerning: kernPairs(view, tables.get('kern')) };
  }
  return shipped;
}

/** The pairs of a kern table's horizontal format-0 subtables (DejaVu Sans has one, 2727 pairs). */
function kernPairs(view: DataView, kern: number | undefined): Map<number, number> {
  const pairs = new Map<number, number>();
  if (kern === undefined) return pairs;
  let sub = kern + 4;
  for (let t = 0; t < view.getUint16(kern + 2); t++, sub += view.getUint16(sub + 2)) {
    if (view.getUint16(sub + 4) !== 1) continue; // horizontal, format 0, not cross-stream
    for (let i = 0, pair = sub + 14; i < view.getUint16(sub + 6); i++, pair += 6) {
      pairs.set(view.getUint16(pair) * 65536 + view.getUint16(pair + 2), view.getInt16(pair + 4));
    }
  }
  return pairs;
}

/** The glyph id of a BMP character, from the font's Windows Unicode cmap (format 4); 0 (.notdef) when absent. */
function glyphId(view: DataView, cmap: number, code: number): number {
  let sub = -1;
  for (let i = 0; i < view.getUint16(cmap + 2); i++) {
    const record = cmap + 4 + 8 * i;
    if (view.getUint16(record) === 3 && view.getUint16(record + 2) === 1) sub = cmap + view.getUint32(record + 4);
  }
  if (sub < 0 || view.getUint16(sub) !== 4) throw new Error('the shipped font has no format-4 Unicode cmap');
  const segments2 = view.getUint16(sub + 6);
  const [ends, starts] = [sub + 14, sub + 16 + segments2];
  const [deltas, rangeOffsets] = [starts + segments2, starts + 2 * segments2];
  for (let s = 0; s < segments2; s += 2) {
    if (code > view.getUint16(ends + s)) continue;
    const start = view.getUint16(starts + s);
    if (code < start) return 0;
    const rangeOffset = view.getUint16(rangeOffsets + s);
    if (rangeOffset === 0) return (code + view.getInt16(deltas + s)) & 0xffff;
    return view.getUint16(rangeOffsets + s + rangeOffset + 2 * (code - start));
  }
  return 0;
}

/** The shipped font's horizontal metrics of `char` (hmtx's advance; glyf's xMin and xMax), in ems. */
export function glyphMetrics(char: string): GlyphMetrics {
  const { view, tables, unitsPerEm } = shippedFont();
  const [head, hhea, hmtx, loca, glyf, cmap] = ['head', 'hhea', 'hmtx', 'loca', 'glyf', 'cmap'].map((t) => tables.get(t)!);
  const glyph = glyphId(view, cmap, char.codePointAt(0)!);
  const advance = view.getUint16(hmtx + 4 * Math.min(glyph, view.getUint16(hhea + 34) - 1));
  const outline = glyf + (view.getInt16(head + 50) === 1 ? view.getUint32(loca + 4 * glyph) : 2 * view.getUint16(loca + 2 * glyph));
  return { glyph, advance: advance / unitsPerEm, xMin: view.getInt16(outline + 2) / unitsPerEm, xMax: view.getInt16(outline + 6) / unitsPerEm };
}

/**
 * Where each character's ink centre lies along a line of `text`, as a share of the line's ink width (0 at the first
 * glyph's left ink edge, 1 at the last one's right), from the font's metrics and kerning, without rendering it.
 */
export function inkCentres(text: string): number[] {
  const { kerning, unitsPerEm } = shippedFont();
  const glyphs = [...text].map(glyphMetrics);
  const pens = [0];
  for (let i = 1; i < glyphs.length; i++) {
    const kern = (kerning.get(glyphs[i - 1]!.glyph * 65536 + glyphs[i]!.glyph) ?? 0) / unitsPerEm;
    pens.push(pens[i - 1]! + glyphs[i - 1]!.advance + kern);
  }
  const left = glyphs[0]!.xMin;
  const right = pens.at(-1)! + glyphs.at(-1)!.xMax;
  return glyphs.map((g, i) => (pens[i]! + (g.xMin + g.xMax) / 2 - left) / (right - left));
}
