import { createInterface } from 'node:readline/promises';
import { InputError } from '../errors.js';
import { generate, type GenerateOptions } from '../generate/generate.js';
import type { RGBImage } from '../vision/image.js';
import type { ChatModel } from '../models/index.js';
import { tokenizeImagePrompt } from '../text/image-prompt.js';
import { isTemplateName, renderPrompt, SINGLE_TURN_TEMPLATES, TEMPLATE_NAMES, type ChatTurn, type TemplateName } from '../text/templates.js';
import { SAMPLING_OPTIONS, samplingFromArgs } from './generate.js';
import { DEFAULT_MODEL_HELP, type CommandHelp } from './args.js';
import { applyMethods, decodeImageArgs, modelOrDefault, openModel, parseCommandArgs, type CommandValues, type ModelValues } from './model-args.js';

const USAGE = 'usage: egret chat [--model PATH] [--image FILE] [--prompt TEXT] [--template T] [--max-new-tokens N] [--temperature T] ' +
  '[--top-p P] [--top-k K] [--repetition-penalty R] [--seed S] [--stop TEXT] [--ignore-eos] [--vtw-layer K|off | --fastv K:R]';

/**
 * `egret chat`: a conversation on stdin/stdout with the answer streamed as it is generated; with --prompt, one
 * question and its answer. Images given with --image belong to the first question.
 */
export const CHAT_HELP: CommandHelp = {
  usage: USAGE,
  summary: 'Interactive chat on stdin/stdout, answers streamed; one question and its answer with --prompt. Images belong to the first question.',
  options: SAMPLING_OPTIONS,
  describe: { model: DEFAULT_MODEL_HELP },
};

export async function chatCommand(args: string[]): Promise<void> {
  const parsed = parseCommandArgs(args, CHAT_HELP);
  const values: CommandValues = { ...parsed, model: modelOrDefault(parsed, USAGE) };
  const sampling = samplingFromArgs(values, 512);
  // Images first: a bad file fails before the model loads.
  const images = await decodeImageArgs(values);
  const model = await openModel(values, USAGE);
  try {
    const template = values.template ?? model.defaultTemplate;
    if (!isTemplateName(template)) throw new InputError(`--template must be one of ${TEMPLATE_NAMES.join(', ')}, got '${template}'`);
    const turns: ChatTurn[] = [];
    const ask = async (question: string) => {
      if (SINGLE_TURN_TEMPLATES.has(template)) turns.length = 0;
      turns.push({ role: 'user', text: question, images: turns.length === 0 ? images.length : 0 });
      const answer = await streamAnswer(model, turns, template, images, sampling, values);
      turns.push({ role: 'assistant', text: answer });
    };
    if (values.prompt !== undefined) {
      await ask(values.prompt);
      return;
    }
    const prompt = () => process.stdout.write(process.stdin.isTTY ? '> ' : '');
    // Reading lines as an async iterator buffers the ones that arrive while an answer is generated (piped input).
    const rl = createInterface({ input: process.stdin, terminal: false });
    try {
      prompt();
      for await (const line of rl) {
        if (line.trim() !== '') await ask(line);
        prompt();
      }
    } finally {
      rl.close();
    }
  } finally {
    await model.dispose();
  }
}

async function streamAnswer(model: ChatModel, turns: readonly ChatTurn[], template: TemplateName, images: readonly RGBImage[], sampling: GenerateOptions, values: ModelValues): Promise<string> {
  const ids = tokenizeImagePrompt(model.tokenizer, renderPrompt(template, turns));
  const prompt = await applyMethods(model, await model.prepare(ids, images), values);
  let text = '';
  for await (const event of generate(model, [prompt], sampling)) {
    process.stdout.write(event.text);
    text += event.text;
  }
  process.stdout.write('\n');
  return text.trim();
}
