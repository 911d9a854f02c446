import { InputError } from '../errors.js';
import { HelpRequested } from './args.js';

/**
 * A subcommand: receives the arguments after its name; throws InputError for bad usage or input, HelpRequested
 * for --help. It may return an exit code of its own (e.g. 1 when a benchmark suite failed).
 */
export type Command = (args: string[]) => Promise<number | void>;

/** Lazily imported so that `egret inspect` does not load ONNX Runtime. */
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  generate: { summary: 'generate an answer (text, or --json with statistics)', load: async () => (await import('./generate.js')).generateCommand },
  chat: { summary: 'interactive chat, streamed; one-shot with --prompt', load: async () => (await import('./chat.js')).chatCommand },
  serve: { summary: 'OpenAI-compatible HTTP server and web UI', load: async () => (await import('./serve.js')).serveCommand },
  logits: { summary: 'one prefill, logits written as safetensors', load: async () => (await import('./logits.js')).logitsCommand },
  tokenize: { summary: "the model tokenizer's ids for a text", load: async () => (await import('./tokenize.js')).tokenizeCommand },
  inspect: { summary: 'the tensors of a checkpoint, without reading their data', load: async () => (await import('./inspect.js')).inspectCommand },
  calibrate: { summary: "calibrate vtw: pick VTW's withdrawal layer by the official KL rule", load: async () => (await import('./calibrate.js')).calibrateCommand },
  eval: { summary: 'eval run|merge|score: answer and score benchmarks', load: async () => (await import('./eval.js')).evalCommand },
  train: { summary: "train lavin: LaVIN's adapters on ScienceQA, the official recipe", load: async () => (await import('./train.js')).trainCommand },
  lab: { summary: "lab [--quick]: MRA and VTW reproduced in miniature; lab generate|tokenizer: the lab's tasks and tokenizer", load: async () => (await import('./lab.js')).labCommand },
  bench: { summary: 'speed and FLOPs benchmarks (egret bench --list)', load: async () => (await import('./bench.js')).benchCommand },
};

const names = Object.keys(commands);
const width = Math.max(...names.map((n) => n.length));
const usage = `usage: egret <command> [options]

commands:
${names.map((n) => `  ${n.padEnd(width)}  ${commands[n]!.summary}`).join('\n')}

egret <command> --help (or egret help <command>) shows a command's options; docs/CLI.md describes them all.
`;

export async function main(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  try {
    if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
      process.stdout.write(usage);
      return 0;
    }
    // `egret help eval run` is `egret eval run --help`.
    if (name === 'help') [name, rest] = [rest[0], [...rest.slice(1), '--help']];
    if (name === undefined) throw new InputError(`no command given (${names.join(', ')}; egret --help)`);
    if (!Object.hasOwn(commands, name)) throw new InputError(`unknown command '${name}' (${names.join(', ')})`);
    return (await (await commands[name]!.load())(rest)) ?? 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(err.text);
      return 0;
    }
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
