/**
 * Broken and hostile image input ends in one InputError line naming the input (the CLI's exit 2): truncated
 * files, zero bytes, text named like an image, decompression bombs refused from the header, size limits.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import { test } from 'node:test';
import { InputError } from '../src/errors.js';
import { decodeImage, loadImage } from '../src/vision/decode.js';

const fixture = (path: string) => fileURLToPath(new URL(`../../test/fixtures/${path}`, import.meta.url));

async function assertRefused(attempt: Promise<unknown>, ...mentions: RegExp[]): Promise<void> {
  await assert.rejects(attempt, (err: unknown) => {
    assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `one line: ${JSON.stringify(err.message)}`);
    for (const m of mentions) assert.match(err.message, m);
    return true;
  });
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A valid little PNG whose IHDR claims width x height (8-bit RGB) over a few bytes of real pixel data. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1 + width * 3))), // one row of the claimed width at most
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

test('truncated PNG, JPEG (baseline and progressive), WebP and GIF are refused', async () => {
  for (const path of ['images/large_text.png', 'images/tall.jpg', 'vision/progressive.jpg', 'vision/cmyk.jpg', 'vision/lossy.webp', 'vision/noise256.gif']) {
    const bytes = await readFile(fixture(path));
    for (const keep of [0.3, 0.9]) {
      await assertRefused(decodeImage(bytes.subarray(0, Math.floor(bytes.length * keep)), { name: path }), new RegExp(path));
    }
  }
});

test('zero bytes, text named like an image, and unsupported formats are refused', async () => {
  await assertRefused(decodeImage(new Uint8Array(0), { name: 'empty.png' }), /empty\.png: empty file/);
  await assertRefused(decodeImage(Buffer.from('just some notes\n'), { name: 'notes.jpg' }), /notes\.jpg: not a PNG, JPEG, WebP or GIF image/);
  await assertRefused(loadImage(fixture('images/README.md')), /README\.md: not a PNG/);
  await assertRefused(decodeImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), { name: 'x.svg' }), /not a PNG/);
});

test('missing files and directories are refused', async () => {
  await assertRefused(loadImage(fixture('images/no-such.png')), /no-such\.png: cannot read image \(ENOENT\)/);
  await assertRefused(loadImage(fixture('images')), /images: not a file/);
});

test('a PNG claiming 100000x100000 is refused from its header, before decoding', async () => {
  const bomb = pngClaiming(100000, 100000);
  assert.ok(bomb.length < 1000);
  await assertRefused(decodeImage(bomb, { name: 'bomb.png' }), /bomb\.png: image is 100000x100000 = 10000000000 pixels, above the limit/);
});

test('JPEG and GIF headers claiming huge sizes are refused too', async () => {
  const jpeg = Buffer.from(await readFile(fixture('images/tall.jpg')));
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0])); // baseline SOF0: length(2) precision(1) height(2) width(2)
  assert.ok(sof > 0);
  jpeg.writeUInt16BE(60000, sof + 5);
  jpeg.writeUInt16BE(60000, sof + 7);
  await assertRefused(decodeImage(jpeg, { name: 'bomb.jpg' }), /bomb\.jpg: image is 60000x60000/);
  const gif = Buffer.from(await readFile(fixture('vision/animated.gif')));
  gif.writeUInt16LE(65535, 6);
  gif.writeUInt16LE(65535, 8);
  await assertRefused(decodeImage(gif, { name: 'bomb.gif' }), /bomb\.gif: image is 65535x65535/);
});

test('the pixel and byte limits are configurable', async () => {
  const png = await readFile(fixture('images/wide_rgb.png')); // 97x61
  assert.equal((await decodeImage(png, { maxPixels: 97 * 61 })).width, 97);
  await assertRefused(decodeImage(png, { name: 'wide', maxPixels: 97 * 61 - 1 }), /wide: image is 97x61 = 5917 pixels, above the limit of 5916/);
  await assertRefused(decodeImage(png, { name: 'wide', maxBytes: 1000 }), /wide: \d+ bytes, above the image size limit of 1000 bytes/);
  await assertRefused(loadImage(fixture('images/wide_rgb.png'), { maxBytes: 1000 }), /wide_rgb\.png: \d+ bytes, above/);
});
