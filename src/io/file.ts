import { open, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { InputError } from '../errors.js';

/** Writes `path` through a temporary file beside it and a rename: a reader never sees half of it. */
export async function writeFileAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const partial = `${path}.partial`;
  await writeFile(partial, data);
  await rename(partial, path);
}

/** One read call at most this long (fs limits a single read to 2 GiB). */
const CHUNK = 1 << 30;

/** A file read by offset, never as a whole. */
export class RandomAccessFile {
  private constructor(readonly path: string, readonly size: number, private readonly handle: FileHandle) {}

  static async open(path: string): Promise<RandomAccessFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw new InputError(`cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw new InputError(`${path}: not a regular file`);
    }
    return new RandomAccessFile(path, stat.size, handle);
  }

  /** `length` bytes at `position`; InputError naming `what` if the file ends first. */
  async readAt(position: number, length: number, what: string): Promise<Uint8Array> {
    if (position < 0 || length < 0 || position + length > this.size) {
      throw new InputError(`${this.path}: ${what} (bytes ${position}..${position + length}) lies outside the file (${this.size} bytes)`);
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, Math.min(CHUNK, length - done), position + done);
      if (bytesRead === 0) throw new InputError(`${this.path}: file ended while reading ${what} at offset ${position + done}`);
      done += bytesRead;
    }
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
