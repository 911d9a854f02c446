/** An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC): `data.length === width * height * 3`. */
export interface RGBImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An RGB colour, each channel 0..255. */
export type RGB = readonly [number, number, number];
