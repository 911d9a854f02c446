/**
 * Prompt templates: chat turns → the prompt string the model was trained on, with `<image>` where visual tokens
 * go (tokenise it with tokenizeImagePrompt).
 */
import { InputError } from '../errors.js';
import { IMAGE_PLACEHOLDER } from './image-prompt.js';
import { pyStrip } from './pytext.js';

export const TEMPLATE_NAMES = ['raw', 'vicuna_v1', 'lavin_sqa'] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

export interface ChatTurn {
  role: 'user' | 'assistant';
  text: string;
  /** Number of images attached to a user turn. */
  images?: number;
}

/** LLaVA llava/conversation.py `conv_vicuna_v1` (SeparatorStyle.TWO). */
export const VICUNA_V1 = {
  system:
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.",
  roles: ['USER', 'ASSISTANT'],
  sep: ' ',
  sep2: '</s>',
} as const;

/** Templates of models trained without chat history: a chat asks each question on its own, with the chat's images. */
export const SINGLE_TURN_TEMPLATES: ReadonlySet<TemplateName> = new Set(['lavin_sqa']);

export function isTemplateName(name: string): name is TemplateName {
  return (TEMPLATE_NAMES as readonly string[]).includes(name);
}

/**
 * The prompt for the assistant's next answer. `turns` alternate user / assistant, start and end with a user turn;
 * earlier assistant turns are the chat history.
 */
export function renderPrompt(template: TemplateName, turns: readonly ChatTurn[]): string {
  turns.forEach((turn, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (turn.role !== expected) throw new InputError(`chat turn ${i} is from '${turn.role}', expected '${expected}'`);
    if (turn.role === 'assistant' && turn.images) throw new InputError(`chat turn ${i}: assistant turns carry no images`);
  });
  if (turns.length % 2 === 0) throw new InputError('the last chat turn must be from the user');
  switch (template) {
    case 'raw':
      return turns.map((turn) => withImages(turn)).join('');
    case 'vicuna_v1':
      return renderVicunaV1(turns);
    case 'lavin_sqa':
      return renderLavinSqa(turns);
  }
}

/** LLaVA puts the images first: DEFAULT_IMAGE_TOKEN + '\n' + question (llava/eval/run_llava.py). */
function withImages(turn: ChatTurn): string {
  return `${IMAGE_PLACEHOLDER}\n`.repeat(turn.images ?? 0) + turn.text;
}

/** conversation.py get_prompt, SeparatorStyle.TWO: user turns end with sep, assistant turns with sep2. */
function renderVicunaV1(turns: readonly ChatTurn[]): string {
  const { system, roles, sep, sep2 } = VICUNA_V1;
  let prompt = system + sep;
  turns.forEach((turn, i) => {
    prompt += `${roles[i % 2]}: ${withImages(turn)}${i % 2 === 0 ? sep : sep2}`;
  });
  return `${prompt}${roles[1]}:`;
}

/**
 * LaVIN's ScienceQA input (lavin/eval_model.py): BOS + "Image: " + visual tokens + the prompt encoded on its own,
 * or BOS + "Image: N/A" + the prompt encoded on its own. Writing "Image: <image>" makes tokenizeImagePrompt encode
 * the two parts separately, as LaVIN does. "Image: N/A " + prompt as one string gives the same ids: the prompt's own
 * dummy prefix is this space, and SentencePiece pieces never join a space to the character before it.
 * LaVIN keeps no history and takes one image at most.
 */
function renderLavinSqa(turns: readonly ChatTurn[]): string {
  if (turns.length !== 1) throw new InputError('template lavin_sqa takes a single user turn (LaVIN keeps no chat history)');
  const turn = turns[0]!;
  const images = turn.images ?? 0;
  if (images > 1) throw new InputError(`template lavin_sqa takes at most one image, got ${images}`);
  return images === 1 ? `Image: ${IMAGE_PLACEHOLDER}${turn.text}` : `Image: N/A ${turn.text}`;
}

/** A ScienceQA problem (problems.json), the fields the prompt uses. */
export interface ScienceQaProblem {
  question: string;
  hint: string;
  choices: string[];
  /** Index of the correct choice. */
  answer: number;
  lecture: string;
  solution: string;
}

const CHOICE_LETTERS = ['A', 'B', 'C', 'D', 'E'];

/** LaVIN util/base_prompt.py, format QCM-ALE without captions: the input the model answers. */
export function scienceQaPrompt(problem: ScienceQaProblem): string {
  if (problem.choices.length > CHOICE_LETTERS.length) {
    throw new InputError(`ScienceQA problem has ${problem.choices.length} choices, at most ${CHOICE_LETTERS.length} are lettered`);
  }
  const context = pyStrip(`${problem.hint} `) || 'N/A';
  const options = problem.choices.map((choice, i) => `(${CHOICE_LETTERS[i]}) ${choice}`).join(' ');
  return tidy(`\nQuestion: ${problem.question}\nContext: ${context}\nOptions: ${options}\nResponse:`);
}

/** base_prompt.py QCM-ALE training target; lecture/solution newlines become the two characters '\n'. */
export function scienceQaTarget(problem: ScienceQaProblem): string {
  const letter = CHOICE_LETTERS[problem.answer];
  if (letter === undefined) throw new InputError(`ScienceQA answer index ${problem.answer} has no letter`);
  const lecture = problem.lecture.replaceAll('\n', '\\n');
  const solution = problem.solution.replaceAll('\n', '\\n');
  return tidy(`The answer is ${letter}. BECAUSE: ${lecture} ${solution}`);
}

/** Python's `.replace("  ", " ").strip()`: one left-to-right pass, so three spaces become two. */
function tidy(text: string): string {
  return pyStrip(text.replaceAll('  ', ' '));
}

