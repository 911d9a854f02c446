import { InputError } from '../errors.js';
import { loadTokenizer } from '../text/load.js';
import { parseCommandLine, type CommandHelp } from './args.js';

const USAGE = 'usage: egret tokenize --model PATH --text T [--no-bos] [--json]';

export const TOKENIZE_HELP: CommandHelp = {
  usage: USAGE,
  summary: "The model tokenizer's ids for a text, BOS first unless --no-bos.",
  options: { model: { type: 'string' }, text: { type: 'string' }, 'no-bos': { type: 'boolean' }, json: { type: 'boolean' } },
  describe: { model: 'model directory, or a tokenizer.model / tokenizer.json file' },
};

/** `egret tokenize`: the model tokenizer's ids for a text, BOS first unless --no-bos. */
export async function tokenizeCommand(args: string[]): Promise<void> {
  const options = parseCommandLine(args, TOKENIZE_HELP).values as { model?: string; text?: string; 'no-bos'?: boolean; json?: boolean };
  if (options.model === undefined || options.text === undefined) throw new InputError(`--model and --text are required; ${USAGE}`);
  const tokenizer = await loadTokenizer(options.model);
  const ids = tokenizer.encode(options.text, { bos: !options['no-bos'], eos: false });
  process.stdout.write(options.json ? `${JSON.stringify({ ids })}\n` : `${ids.join(' ')}\n`);
}

