import { InputError } from '../errors.js';
import { generate, type GenerateOptions, type GenerationResult } from '../generate/generate.js';
import { requestFlops } from '../generate/flops.js';
import { DEFAULT_MODEL_HELP, type CommandHelp } from './args.js';
import { decodeImageArgs, modelOrDefault, openModel, parseCommandArgs, positiveInt, promptFromArgs, type CommandValues } from './model-args.js';

const USAGE = 'usage: egret generate [--model PATH] [--clip FILE --adapter FILE] (--prompt TEXT [--template T] | --ids 1,2,3) [--image FILE] --max-new-tokens N ' +
  '[--temperature T] [--top-p P] [--top-k K] [--repetition-penalty R] [--seed S] [--stop TEXT] [--ignore-eos] [--json]';

export const SAMPLING_OPTIONS = {
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  'ignore-eos': { type: 'boolean' },
} as const;

function number(values: CommandValues, name: string, check: (x: number) => boolean, what: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(x) || !check(x)) throw new InputError(`--${name} must be ${what}, got '${String(v)}'`);
  return x;
}

export function samplingFromArgs(values: CommandValues, defaultMaxNew: number): GenerateOptions {
  return {
    maxNewTokens: positiveInt(values['max-new-tokens'] as string | undefined, 'max-new-tokens', defaultMaxNew)!,
    temperature: number(values, 'temperature', (x) => x >= 0, 'a number ≥ 0') ?? 0,
    topP: number(values, 'top-p', (x) => x > 0 && x <= 1, 'in (0, 1]'),
    topK: number(values, 'top-k', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
    repetitionPenalty: number(values, 'repetition-penalty', (x) => x > 0, 'a number > 0'),
    seed: number(values, 'seed', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
    stop: (values.stop as string[] | undefined) ?? [],
    ignoreEos: values['ignore-eos'] === true,
  };
}

/** `egret generate`: text on stdout as it is produced, or one JSON document with ids, text and statistics. */
export const GENERATE_HELP: CommandHelp = {
  usage: USAGE,
  summary: 'Generates an answer with a KV cache: text on stdout as it is produced, or one JSON document with ids, text and statistics.',
  options: { ...SAMPLING_OPTIONS, json: { type: 'boolean' } },
  describe: { model: DEFAULT_MODEL_HELP },
};

export async function generateCommand(args: string[]): Promise<void> {
  const parsed = parseCommandArgs(args, GENERATE_HELP);
  const values: CommandValues = { ...parsed, model: modelOrDefault(parsed, USAGE) };
  const sampling = samplingFromArgs(values, 128);
  const images = await decodeImageArgs(values);
  const model = await openModel(values, USAGE);
  try {
    const { prompt } = await promptFromArgs(model, values, USAGE, images);
    const run = generate(model, [prompt], sampling);
    let result: GenerationResult[];
    for (;;) {
      const step = await run.next();
      if (step.done) {
        result = step.value;
        break;
      }
      if (!values.json) process.stdout.write(step.value.text);
    }
    const r = result[0]!;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({
        ids: r.ids,
        text: r.text,
        finish_reason: r.finishReason,
        stats: {
          prompt_tokens: r.stats.promptTokens,
          visual_tokens: prompt.visual.length,
          new_tokens: r.stats.newTokens,
          prefill_ms: round(r.stats.prefillMs),
          decode_ms: round(r.stats.decodeMs),
          flops: requestFlops(model.decoder, prompt, r.stats.newTokens),
        },
      })}\n`);
    } else {
      process.stdout.write('\n');
    }
  } finally {
    await model.dispose();
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;
