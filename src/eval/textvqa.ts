/**
 * TextVQA soft accuracy as LLaVA-HR's llava_hr/eval/eval_textvqa.py computes it, with
 * TextVQAAccuracyEvaluator from llava_hr/eval/m4c_evaluator.py.
 */
import { InputError } from '../errors.js';
import type { Answer } from './answers.js';
import { arrayField, asRecord, idField, readJson, stringField } from './files.js';
import { normalizeVqaAnswer } from './vqa-normalize.js';

export interface TextVqaResult {
  task: 'textvqa';
  count: number;
  accuracy: number;
}

const OCR_QUESTION = /Question: (.*?) Short answer:/s;

/**
 * eval_textvqa.py prompt_processor: the question inside a LLaVA prompt, lower-cased. Undefined where the
 * official function fails (its `assert False`, or a BLIP-style prompt without a question).
 */
export function textVqaQuestion(prompt: string): string | undefined {
  const lines = prompt.split('\n');
  let question: string | undefined;
  if (prompt.startsWith('OCR tokens: ')) {
    question = OCR_QUESTION.exec(prompt)?.[1];
  } else if (prompt.includes('Reference OCR token: ') && lines.length === 3) {
    question = prompt.startsWith('Reference OCR token:') ? lines[1] : lines[0];
  } else if (lines.length === 2) {
    question = lines[0];
  }
  return question?.toLowerCase();
}

/**
 * The soft score of a prediction against ten human answers: for each answer left out in turn,
 * min(1, matches among the other nine / 3), averaged over the ten (m4c_evaluator.py _compute_answer_scores),
 * summed in the official order so the float result is identical.
 */
export function softVqaScore(prediction: string, humanAnswers: string[]): number {
  const normalized = humanAnswers.map(normalizeVqaAnswer);
  const predicted = normalizeVqaAnswer(prediction);
  const matches = normalized.filter((answer) => answer === predicted).length;
  if (matches === 0) return 0;
  let sum = 0;
  for (const answer of normalized) {
    const others = matches - (answer === predicted ? 1 : 0);
    sum += Math.min(1, others / 3);
  }
  return sum / normalized.length;
}

function loadAnnotations(path: string): Map<string, string[]> {
  const data = arrayField(asRecord(readJson(path), path), 'data', path);
  const byQuestion = new Map<string, string[]>();
  data.forEach((entry, index) => {
    const where = `${path}: data[${index}]`;
    const record = asRecord(entry, where);
    const answers = arrayField(record, 'answers', where);
    // m4c_evaluator.py asserts ten human answers per question.
    if (answers.length !== 10 || !answers.every((a) => typeof a === 'string')) {
      throw new InputError(`${where}: 'answers' must hold 10 strings`);
    }
    const key = JSON.stringify([idField(record, 'image_id', where), stringField(record, 'question', where).toLowerCase()]);
    byQuestion.set(key, answers as string[]);
  });
  return byQuestion;
}

/** Scores LLaVA answers against TextVQA_0.5.1_val.json. Answers are matched by (image id, question). */
export function scoreTextVqa(annotationPath: string, answers: Answer[]): TextVqaResult {
  if (answers.length === 0) throw new InputError('no predictions to score');
  const annotations = loadAnnotations(annotationPath);
  let sum = 0;
  for (const answer of answers) {
    const question = textVqaQuestion(answer.prompt);
    if (question === undefined) throw new InputError(`${answer.where}: no TextVQA question in the prompt`);
    // eval_textvqa.py keys annotations by (image_id, question); LLaVA's question file puts the image id in question_id.
    const humanAnswers = annotations.get(JSON.stringify([answer.questionId, question]));
    if (!humanAnswers) {
      throw new InputError(`${answer.where}: question '${question}' of image ${answer.questionId} is not in ${annotationPath}`);
    }
    sum += softVqaScore(answer.text, humanAnswers);
  }
  return { task: 'textvqa', count: answers.length, accuracy: sum / answers.length };
}
