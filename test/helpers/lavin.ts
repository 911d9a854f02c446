// tiny-lavin's problems (expected.json) as an official ScienceQA folder, for the training tests.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export const TINY_LAVIN = join(ROOT, 'test/fixtures/tiny-lavin');

interface Sample { qid: string; image_file?: string; problem: Record<string, unknown> }
const SAMPLES = (JSON.parse(readFileSync(join(TINY_LAVIN, 'expected.json'), 'utf8')) as { samples: Sample[] }).samples;

/** `dir`/sqa: problems.json with every sample's problem, images/train/<pid>/image.png, and split `train` = `ids` in that order. */
export function tinyScienceQa(dir: string, ids: readonly string[]): string {
  const data = join(dir, 'sqa');
  const problems: Record<string, unknown> = {};
  for (const s of SAMPLES) {
    problems[s.qid] = { ...s.problem, split: 'train' };
    if (s.image_file) {
      mkdirSync(join(data, 'images/train', s.qid), { recursive: true });
      copyFileSync(join(TINY_LAVIN, s.image_file), join(data, 'images/train', s.qid, 'image.png'));
    }
  }
  writeFileSync(join(data, 'problems.json'), JSON.stringify(problems));
  writeFileSync(join(data, 'pid_splits.json'), JSON.stringify({ train: ids, val: [] }));
  return data;
}
