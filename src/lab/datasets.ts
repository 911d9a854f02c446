/**
 * The generated tasks written as datasets in the layouts egret already reads: the small-print task as LLaVA's
 * training conversations, LLaVA's question file and TextVQA-style annotations (so `egret eval run|score textvqa`
 * answer and score it: ten identical answers make the soft score exact match); the ScienceQA-like task in
 * ScienceQA's own layout. The same seed and count give byte-identical files.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { scienceQaPrompt, scienceQaTarget, VICUNA_V1 } from '../text/templates.js';
import { trainTokenizerModel } from './bpe-train.js';
import { renderScene, scienceQaSample, SPLITS, type OfficialProblem } from './scienceqa.js';
import { renderSmallPrint, smallPrintText, type SmallPrintSample } from './smallprint.js';

export const LAB_TASKS = ['smallprint', 'scienceqa'] as const;
export type LabTask = (typeof LAB_TASKS)[number];

/** LLaVA-1.5's instruction after a short-answer question (its VQA question files end with it). */
export const SHORT_ANSWER = 'Answer the question using a single word or phrase.';

export interface DatasetOptions {
  seed: number;
  count: number;
  /** Called after each sample with the number written so far. */
  onProgress?: (done: number) => void;
}

/** Samples rendered at once: sharp works on its own threads while the next sample is drawn. */
const IN_FLIGHT = 4;

/** The id of small-print sample `index` in the question and annotation files, and its image's name. */
export function smallPrintId(index: number): string {
  return String(index).padStart(6, '0');
}

export function smallPrintImageName(index: number): string {
  return `${smallPrintId(index)}.png`;
}

/** The user's message of a small-print question, without the image placeholder. */
export function smallPrintMessage(question: string): string {
  return `${question}\n${SHORT_ANSWER}`;
}

/**
 * `dir`/images/NNNNNN.png and, per sample in order: llava.json (LLaVA's training conversations), questions.jsonl
 * (LLaVA's question file: question_id, image, text), annotations.json (TextVQA layout: data[].image_id, question,
 * answers), samples.jsonl (the code's cap height, rotation and ink box, for checks).
 */
export async function writeSmallPrintDataset(dir: string, { seed, count, onProgress }: DatasetOptions): Promise<void> {
  await prepareOutput(dir);
  await mkdir(join(dir, 'images'));
  const samples: Omit<SmallPrintSample, 'png'>[] = [];
  await forEachInOrder(count, (index) => renderSmallPrint(seed, index), async ({ png, ...sample }) => {
    await writeFile(join(dir, 'images', smallPrintImageName(sample.index)), png);
    samples.push(sample);
    onProgress?.(samples.length);
  });
  const id = (s: { index: number }) => smallPrintId(s.index);
  const llava = samples.map((s) => ({
    id: id(s),
    image: smallPrintImageName(s.index),
    conversations: [{ from: 'human', value: `<image>\n${smallPrintMessage(s.question)}` }, { from: 'gpt', value: s.code }],
  }));
  await writeFile(join(dir, 'llava.json'), `${JSON.stringify(llava, null, 1)}\n`);
  await writeFile(join(dir, 'questions.jsonl'), jsonLines(samples.map((s) => ({ question_id: id(s), image: smallPrintImageName(s.index), text: smallPrintMessage(s.question) }))));
  const annotations = { dataset_name: 'egret-smallprint', data: samples.map((s) => ({ image_id: id(s), question: s.question, answers: Array<string>(10).fill(s.code) })) };
  await writeFile(join(dir, 'annotations.json'), `${JSON.stringify(annotations, null, 1)}\n`);
  await writeFile(join(dir, 'samples.jsonl'), jsonLines(samples.map((s) => ({
    id: id(s), image: smallPrintImageName(s.index), code: s.code, question: s.question, width: s.width, height: s.height,
    cap_height: round3(s.capHeight), angle: round3(s.angle), box: s.box, ink: s.ink,
  }))));
}

/**
 * ScienceQA's layout: problems.json (pid → problem), pid_splits.json (train, val, test → pids),
 * images/<split>/<pid>/image.png, and captions.json with no captions (LaVIN's loader reads one).
 */
export async function writeScienceQaDataset(dir: string, { seed, count, onProgress }: DatasetOptions): Promise<void> {
  await prepareOutput(dir);
  const problems: Record<string, OfficialProblem> = {};
  const splits: Record<string, string[]> = Object.fromEntries(SPLITS.map((s) => [s, []]));
  let done = 0;
  await forEachInOrder(
    count,
    async (index) => {
      const sample = scienceQaSample(seed, index);
      return { ...sample, png: sample.scene ? await renderScene(sample.scene) : undefined };
    },
    async ({ pid, problem, png }) => {
      if (png) {
        const folder = join(dir, 'images', problem.split, pid);
        await mkdir(folder, { recursive: true });
        await writeFile(join(folder, 'image.png'), png);
      }
      problems[pid] = problem;
      splits[problem.split]!.push(pid);
      onProgress?.(++done);
    },
  );
  await writeFile(join(dir, 'problems.json'), `${JSON.stringify(problems, null, 1)}\n`);
  await writeFile(join(dir, 'pid_splits.json'), `${JSON.stringify(splits, null, 1)}\n`);
  await writeFile(join(dir, 'captions.json'), `${JSON.stringify({ captions: {} })}\n`);
}

/**
 * The text a model of the lab reads and writes for the first `count` samples of each task of `seed`: small-print
 * questions in LLaVA's raw and vicuna_v1 forms and their codes, ScienceQA-like problems as LaVIN's QCM-ALE input
 * ("Image: " and the prompt, encoded apart as LaVIN does, or "Image: N/A" and the prompt) and target.
 */
export function* labTexts(seed: number, count: number): Generator<string> {
  for (let index = 0; index < count; index++) {
    const { code, question } = smallPrintText(seed, index);
    const message = smallPrintMessage(question);
    yield message;
    yield `${VICUNA_V1.system} ${VICUNA_V1.roles[0]}: ${message} ${VICUNA_V1.roles[1]}:`;
    yield code;
    const { problem } = scienceQaSample(seed, index);
    const prompt = scienceQaPrompt(problem);
    if (problem.image === null) {
      yield `Image: N/A ${prompt}`;
    } else {
      yield 'Image: ';
      yield prompt;
    }
    yield scienceQaTarget(problem);
  }
}

/** The lab's tokenizer.model: BPE learnt from labTexts(seed, count), `vocabSize` pieces in all. */
export function labTokenizerModel(seed: number, count: number, vocabSize: number): Uint8Array {
  return trainTokenizerModel(labTexts(seed, count), { vocabSize });
}

/** Refuses an output folder that already holds files (nothing is overwritten); a missing one is fine. */
export async function checkOutputFolder(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new InputError(`cannot use ${dir} as the output folder: ${code ?? String(err)}`);
  }
  if (entries.length > 0) throw new InputError(`${dir} is not empty; give a new or empty folder (nothing is overwritten)`);
}

async function prepareOutput(dir: string): Promise<void> {
  await checkOutputFolder(dir);
  await mkdir(dir, { recursive: true });
}

/** make(0..count-1), up to IN_FLIGHT at once, each result handed to `use` in index order. */
async function forEachInOrder<T>(count: number, make: (index: number) => Promise<T>, use: (item: T) => Promise<void>): Promise<void> {
  const pending: Promise<T>[] = [];
  let next = 0;
  const start = () => {
    const promise = make(next++);
    promise.catch(() => {}); // awaited in turn below; a failure ahead of its turn must not end the process first
    pending.push(promise);
  };
  while (next < count && pending.length < IN_FLIGHT) start();
  while (pending.length > 0) {
    const item = await pending.shift()!;
    if (next < count) start();
    await use(item);
  }
}

function jsonLines(rows: object[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
