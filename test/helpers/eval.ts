import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The miniature benchmarks of test/fixtures/eval/ (see its README for how the expected numbers were made). */
export const EVAL_FIXTURES = fileURLToPath(new URL('../../../test/fixtures/eval/', import.meta.url));

export function fixture(...parts: string[]): string {
  return join(EVAL_FIXTURES, ...parts);
}

/** A file of numbers recorded from the official scorers, test/fixtures/eval/expected/<name>.json. */
export function expected<T>(name: string): T {
  return JSON.parse(readFileSync(join(EVAL_FIXTURES, 'expected', `${name}.json`), 'utf8')) as T;
}
