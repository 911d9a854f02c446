/** Reading benchmark files (and writing results): every failure is an InputError that names the file (and line). */
import { readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { pyLines } from '../text/pytext.js';

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export { readJsonFileSync as readJson } from '../io/json.js';

export interface JsonLine {
  value: unknown;
  /** `file:line`, for messages. */
  where: string;
}

/** A JSON-lines file; blank lines (a trailing newline, spacing) are skipped. */
export function readJsonLines(path: string): JsonLine[] {
  return parseJsonLines(readText(path), path);
}

/** JSON lines already read from `path` (named in messages). */
export function parseJsonLines(text: string, path: string): JsonLine[] {
  const rows: JsonLine[] = [];
  pyLines(text).forEach((line, index) => {
    if (line.trim() === '') return;
    const where = `${path}:${index + 1}`;
    try {
      rows.push({ value: JSON.parse(line), where });
    } catch (err) {
      throw new InputError(`${where}: not valid JSON (${(err as Error).message})`);
    }
  });
  return rows;
}

/** Directory entries, sorted; InputError when the directory cannot be read. */
export function listDir(path: string): string[] {
  try {
    return readdirSync(path).sort();
  } catch (err) {
    throw new InputError(`cannot read directory ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export { expectObject as asRecord, stringField, arrayField } from '../io/json.js';

/** A question id as the official scripts key it: JSON strings and integers both appear in the wild. */
export function idField(record: Record<string, unknown>, key: string, where: string): string {
  const value = record[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new InputError(`${where}: '${key}' must be a string or a number`);
}

/** Writes beside the target, flushed, then renames: a reader never sees half a file, a crash never leaves one. */
export function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text, { flush: true });
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new InputError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
