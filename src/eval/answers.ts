/**
 * LLaVA answer files, as llava/eval/model_vqa_loader.py and model_vqa_science.py write them: JSON lines with
 * `question_id`, `prompt` and `text` (plus `answer_id`, `model_id`, `metadata`, which scoring ignores).
 */
import { asRecord, idField, readJsonLines, stringField } from './files.js';

export interface Answer {
  /** The id as a string: the official files use strings for some benchmarks and integers for others. */
  questionId: string;
  prompt: string;
  text: string;
  /** `file:line` of the answer, for messages. */
  where: string;
}

export function readAnswers(path: string): Answer[] {
  return readJsonLines(path).map(({ value, where }) => {
    const record = asRecord(value, where);
    return {
      questionId: idField(record, 'question_id', where),
      prompt: stringField(record, 'prompt', where),
      text: stringField(record, 'text', where),
      where,
    };
  });
}
