import { InputError } from '../errors.js';

/**
 * A subcommand: receives the arguments after its name; throws InputError for bad usage or input. It may return
 * an exit code of its own (e.g. 1 when a benchmark suite failed).
 */
export type Command = (args: string[]) => Promise<number | void>;

/** Lazily imported so that `egret inspect` does not load ONNX Runtime. */
const commands: Record<string, () => Promise<Command>> = {
  eval: async () => (await import('./eval.js')).evalCommand,
  tokenize: async () => (await import('./tokenize.js')).tokenizeCommand,
  inspect: async () => (await import('./inspect.js')).inspectCommand,
  logits: async () => (await import('./logits.js')).logitsCommand,
  generate: async () => (await import('./generate.js')).generateCommand,
  chat: async () => (await import('./chat.js')).chatCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
  calibrate: async () => (await import('./calibrate.js')).calibrateCommand,
  bench: async () => (await import('./bench.js')).benchCommand,
};

const usage = `usage: egret <command> [options]
commands: ${Object.keys(commands).join(', ')}`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === '--help' || name === '-h') {
      process.stdout.write(usage + '\n');
      return 0;
    }
    if (name === undefined) throw new InputError(`no command given (${Object.keys(commands).join(', ')})`);
    if (!Object.hasOwn(commands, name)) throw new InputError(`unknown command '${name}' (${Object.keys(commands).join(', ')})`);
    return (await (await commands[name]!())(rest)) ?? 0;
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`error: ${oneLine(err.message)}\n`);
      return 2;
    }
    process.stderr.write(`error: internal failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ');
}
