/**
 * Answer files that `egret eval run` writes: LLaVA's format (model_vqa_loader.py, model_vqa_science.py), one JSON
 * line per question in benchmark order, so that the official scorers and `egret eval score` read them unchanged.
 * `metadata` (empty in the official files, ignored by every scorer) records the settings that change the answers
 * and the question's place in the benchmark; resuming, sharding and merging rely on it.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../errors.js';
import { asRecord, parseJsonLines, readText, writeAtomically } from './files.js';
import type { EvalQuestion } from './questions.js';

/** What decides the answers: lines written under other settings cannot be mixed with this run's. */
export type RunSettings = {
  task: string;
  /** The model's name as the official scripts record it (get_model_name_from_path). */
  model_id: string;
  dtype: string;
  template: string;
  max_new_tokens: number;
  /** Questions in the run (the benchmark, or its first --limit): shards and resumed runs must agree on it. */
  questions: number;
  /** VTW's K, when visual tokens are withdrawn. */
  vtw_layer?: number;
  /** FastV's K:R, when visual tokens are pruned. */
  fastv?: string;
  /** LaVIN's decoding positions: lavin/generator.py's ('official') or training's ('corrected'). */
  decode_positions?: 'official' | 'corrected';
};

/** Recorded for people, not compared: the same model may sit at another path, a release may fix a typo. */
export interface RunRecord {
  model: string;
  egret: string;
}

/** Metadata of one answer line; `index` is the question's place in the run's question list. */
type LineMetadata = RunSettings & RunRecord & { index: number };

const SETTING_KEYS = ['task', 'model_id', 'dtype', 'template', 'max_new_tokens', 'questions', 'vtw_layer', 'fastv', 'decode_positions'] as const;

/** llava/mm_utils.py get_model_name_from_path: the folder's name, with its parent's for `checkpoint-*` folders. */
export function modelIdFromPath(path: string): string {
  const parts = path.replace(/^\/+|\/+$/g, '').split('/');
  const last = parts.at(-1)!;
  return last.startsWith('checkpoint-') && parts.length > 1 ? `${parts.at(-2)}_${last}` : last;
}

/** One answer line, keys in the official order. */
export function answerLine(question: EvalQuestion, index: number, text: string, settings: RunSettings, record: RunRecord): string {
  const metadata: LineMetadata = { ...settings, ...record, index };
  return JSON.stringify({
    question_id: question.id,
    prompt: question.prompt,
    text,
    answer_id: answerId(settings, question, text),
    model_id: settings.model_id,
    metadata,
  });
}

const SHORTUUID_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/**
 * A 22-character id in shortuuid's alphabet, like the official `shortuuid.uuid()`, but derived from the answer
 * instead of drawn at random: a resumed or sharded run writes the same bytes as an uninterrupted one.
 */
function answerId(settings: RunSettings, question: EvalQuestion, text: string): string {
  const digest = createHash('sha256').update(JSON.stringify([settings, question.id, text])).digest('hex');
  let n = BigInt(`0x${digest}`);
  let id = '';
  for (let i = 0; i < 22; i++) {
    id += SHORTUUID_ALPHABET[Number(n % 57n)];
    n /= 57n;
  }
  return id;
}

interface WrittenLine {
  value: Record<string, unknown>;
  metadata: Record<string, unknown>;
  where: string;
}

function readWrittenLines(path: string): WrittenLine[] {
  return parseWrittenLines(readText(path), path);
}

function parseWrittenLines(text: string, path: string): WrittenLine[] {
  return parseJsonLines(text, path).map(({ value, where }) => {
    const record = asRecord(value, where);
    const metadata = record['metadata'];
    const { index, questions } = (typeof metadata === 'object' && metadata !== null ? metadata : {}) as Record<string, unknown>;
    if (!Number.isInteger(index) || !Number.isInteger(questions) || (index as number) < 0 || (index as number) >= (questions as number)) {
      throw new InputError(`${where}: no run settings in 'metadata' (not written by egret eval run)`);
    }
    return { value: record, metadata: metadata as Record<string, unknown>, where };
  });
}

/** The first setting in which two runs differ, as `key "a" vs "b"`; undefined when they agree. */
function settingsDifference(a: Record<string, unknown>, b: Record<string, unknown>): string | undefined {
  const key = SETTING_KEYS.find((name) => a[name] !== b[name]);
  const show = (value: unknown) => JSON.stringify(value) ?? '(none)';
  return key === undefined ? undefined : `${key} ${show(a[key])} vs ${show(b[key])}`;
}

/**
 * An answer file open for appending, after the answers it already holds. Those must be the first answers of this
 * run, in order, under the same settings; a last line cut short by an interrupted write is dropped (its question
 * runs again).
 */
export class AnswerWriter {
  private constructor(private readonly fd: number, readonly done: number) {}

  /** `questions[i]` is the run's question with index `indices[i]`. */
  static open(path: string, questions: readonly EvalQuestion[], indices: readonly number[], settings: RunSettings): AnswerWriter {
    let fd: number;
    try {
      mkdirSync(dirname(path), { recursive: true });
      fd = openSync(path, 'a+');
    } catch (err) {
      throw new InputError(`cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      // Every line ends with '\n' (JSON escapes newlines inside strings): anything after the last one is torn.
      const bytes = readFileSync(path);
      const complete = bytes.lastIndexOf(0x0a) + 1;
      const written = parseWrittenLines(bytes.subarray(0, complete).toString('utf8'), path);
      written.forEach((line, i) => {
        const difference = settingsDifference(line.metadata, settings);
        if (difference) throw new InputError(`${line.where} was written with other settings (${difference} in this run); use another --out or the same settings`);
        const question = questions[i];
        if (question === undefined) throw new InputError(`${path} holds ${written.length} answers, more than the ${questions.length} questions of this run`);
        if (line.metadata['index'] !== indices[i] || line.value['question_id'] !== question.id || line.value['prompt'] !== question.prompt) {
          throw new InputError(`${line.where} does not answer this run's question ${indices[i]} (question_id ${JSON.stringify(question.id)}): another benchmark, shard or limit; use another --out`);
        }
      });
      if (complete < bytes.length) dropTornLine(fd, path, bytes.subarray(complete), complete);
      return new AnswerWriter(fd, written.length);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Appends the lines and waits until they are on disk: an interrupt loses at most the batch in flight. */
  append(lines: readonly string[]): void {
    writeFully(this.fd, Buffer.from(lines.map((line) => `${line}\n`).join('')));
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Cuts a write that an interrupt left unfinished (its question runs again), once the lines before it have proved
 * the file egret's; a tail that does not begin as answerLine's lines do (`{"question_id":` then the id, no space)
 * is another program's file, refused rather than cut.
 */
function dropTornLine(fd: number, path: string, tail: Buffer, complete: number): void {
  const head = tail.subarray(0, 16).toString('utf8');
  if (!('{"question_id":'.startsWith(head) || /^\{"question_id":["\d-]/.test(head))) {
    throw new InputError(`${path}: its last line is incomplete and not an answer egret writes; use another --out`);
  }
  ftruncateSync(fd, complete);
  fsyncSync(fd);
}

function writeFully(fd: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
}

/**
 * Joins shard answer files into one, in question order: every question of the run exactly once, all under the
 * same settings. Lines are copied as they are, so the result equals an unsharded run's file.
 */
export function mergeAnswerFiles(out: string, shards: readonly string[]): number {
  const byIndex = new Map<number, WrittenLine>();
  let first: WrittenLine | undefined;
  for (const path of shards) {
    for (const line of readWrittenLines(path)) {
      first ??= line;
      const difference = settingsDifference(line.metadata, first.metadata);
      if (difference) throw new InputError(`${line.where} was written with other settings than ${first.where} (${difference})`);
      const index = line.metadata['index'] as number;
      const earlier = byIndex.get(index);
      if (earlier) throw new InputError(`${line.where} answers question ${index} again (also ${earlier.where})`);
      byIndex.set(index, line);
    }
  }
  if (!first) throw new InputError(`no answers in ${shards.join(', ')}`);
  const total = first.metadata['questions'] as number;
  const lines: string[] = [];
  for (let index = 0; index < total; index++) {
    const line = byIndex.get(index);
    if (!line) throw new InputError(`question ${index} of ${total} has no answer in ${shards.join(', ')} (a shard missing or unfinished?)`);
    // JSON.stringify gives back the very line it wrote before (same key order, same numbers).
    lines.push(JSON.stringify(line.value));
  }
  writeAtomically(out, lines.map((line) => `${line}\n`).join(''));
  return total;
}
