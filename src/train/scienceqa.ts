/**
 * ScienceQA in its official layout (lupantech/ScienceQA; LaVIN's util/datasets.py reads the same): problems.json
 * (a dict keyed by problem id), pid_splits.json (split name → problem ids), images/<split>/<pid>/<image>.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { arrayField, expectObject, readJsonFileSync, stringField } from '../io/json.js';
import type { ScienceQaProblem } from '../text/templates.js';

const OPTION_LETTERS = 5;

export interface SqaProblem extends ScienceQaProblem {
  id: string;
  /** The image's file name in images/<split>/<pid>/, when the problem has one. */
  image?: string;
}

/** The problems of `split`, in pid_splits.json's order. Every failure is an input error naming the file. */
export function readScienceQa(dir: string, split: string): SqaProblem[] {
  const splitsPath = join(dir, 'pid_splits.json');
  const problemsPath = join(dir, 'problems.json');
  if (!existsSync(problemsPath)) throw new InputError(`${dir}: no problems.json (not a ScienceQA folder)`);
  const splits = expectObject(readJsonFileSync(splitsPath), splitsPath);
  const ids = splits[split];
  if (!Array.isArray(ids)) throw new InputError(`${splitsPath}: no split '${split}' (${Object.keys(splits).join(', ')})`);
  const problems = expectObject(readJsonFileSync(problemsPath), problemsPath);
  return ids.map((pid) => {
    const id = String(pid);
    if (!Object.hasOwn(problems, id)) throw new InputError(`${splitsPath}: problem ${id} is not in ${problemsPath}`);
    return readProblem(id, problems[id], `${problemsPath}: problem ${id}`);
  });
}

function readProblem(id: string, value: unknown, where: string): SqaProblem {
  const record = expectObject(value, where);
  const choices = arrayField(record, 'choices', where);
  if (!choices.every((choice) => typeof choice === 'string')) throw new InputError(`${where}: 'choices' must be strings`);
  if (choices.length > OPTION_LETTERS) throw new InputError(`${where}: ${choices.length} choices, at most ${OPTION_LETTERS} are lettered`);
  const image = record['image'];
  if (image !== null && image !== undefined && typeof image !== 'string') throw new InputError(`${where}: 'image' must be a string or null`);
  const answer = record['answer'];
  // Evaluation reads problems without answers and explanations; training needs them (see lavinExample).
  const optional = (key: string) => (record[key] === undefined ? '' : stringField(record, key, where));
  return {
    id,
    question: stringField(record, 'question', where),
    hint: stringField(record, 'hint', where),
    choices: choices as string[],
    answer: typeof answer === 'number' && Number.isInteger(answer) ? answer : -1,
    lecture: optional('lecture'),
    solution: optional('solution'),
    // The scripts test `image is None`; an empty name would be no file at all.
    ...(typeof image === 'string' && image !== '' ? { image } : {}),
  };
}
