/** JSON files read with errors that name them, and the one check that a parsed value is an object. */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';

/** A plain JSON object (not null, not an array). */
export function isObject<T>(value: T): value is Extract<T, Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parse(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

const readError = (path: string, err: unknown) => new InputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);

/** The parsed file; with `optional`, undefined when the file does not exist. */
export async function readJsonFile(path: string, options: { optional: true }): Promise<unknown>;
export async function readJsonFile(path: string): Promise<unknown>;
export async function readJsonFile(path: string, options: { optional?: boolean } = {}): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (options.optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw readError(path, err);
  }
  return parse(text, path);
}

export function readJsonFileSync(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw readError(path, err);
  }
  return parse(text, path);
}

/** The file's object; anything else is an input error naming the file. */
export function expectObject(value: unknown, path: string): Record<string, unknown> {
  if (!isObject(value)) throw new InputError(`${path}: expected a JSON object`);
  return value;
}

/** `record[key]` as a string; anything else is an input error naming `where` and the key. */
export function stringField(record: Record<string, unknown>, key: string, where: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw new InputError(`${where}: '${key}' must be a string`);
  return value;
}

/** `record[key]` as an array; anything else is an input error naming `where` and the key. */
export function arrayField(record: Record<string, unknown>, key: string, where: string): unknown[] {
  const value = record[key];
  if (!Array.isArray(value)) throw new InputError(`${where}: '${key}' must be an array`);
  return value;
}
