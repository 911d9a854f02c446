import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { loadTokenizer } from '../text/load.js';

const USAGE = 'usage: egret tokenize --model PATH --text T [--no-bos] [--json]';

/** `egret tokenize`: the model tokenizer's ids for a text, BOS first unless --no-bos. */
export async function tokenizeCommand(args: string[]): Promise<void> {
  const options = parseOptions(args);
  if (options.model === undefined || options.text === undefined) throw new InputError(`--model and --text are required; ${USAGE}`);
  const tokenizer = await loadTokenizer(options.model);
  const ids = tokenizer.encode(options.text, { bos: !options['no-bos'], eos: false });
  process.stdout.write(options.json ? `${JSON.stringify({ ids })}\n` : `${ids.join(' ')}\n`);
}

function parseOptions(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        model: { type: 'string' },
        text: { type: 'string' },
        'no-bos': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new InputError(`${(err as Error).message}; ${USAGE}`);
  }
}
