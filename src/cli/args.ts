/**
 * Command-line parsing shared by every command: node's parseArgs (strict), `--help` / `-h` anywhere printing the
 * command's help (exit 0), and an unknown option answered with the closest known one.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closestName, InputError } from '../errors.js';

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** What `egret <command> --help` prints, and what the parser accepts. */
export interface CommandHelp {
  /** `usage: egret ...` */
  usage: string;
  /** One line: what the command does. */
  summary: string;
  options: OptionsConfig;
  /** Whether arguments besides options are taken (inspect PATH, eval merge FILES...). */
  positionals?: boolean;
  /** Descriptions that differ from OPTION_HELP's for this command, e.g. what --out writes. */
  describe?: Record<string, string>;
}

/** Thrown to stop a command and print its help on stdout; main() exits 0. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super('help requested');
  }
}

/** Parsed values and positionals; --help/-h throws HelpRequested, bad usage an InputError with the usage line. */
export function parseCommandLine(args: readonly string[], help: CommandHelp): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequested(formatHelp(help));
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: help.options, strict: true, allowPositionals: help.positionals ?? false });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    throw new InputError(`${describeParseError(err as Error, help.options)}; ${help.usage}`);
  }
}

/** parseArgs' messages, with an unknown option answered by the closest known one. */
function describeParseError(err: Error, options: OptionsConfig): string {
  const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(err.message);
  if (!unknown) return err.message;
  const given = unknown[1]!;
  const suggestion = closestName(given.replace(/^-+/, '').split('=')[0]!, Object.keys(options));
  return `unknown option ${given}${suggestion ? ` (did you mean --${suggestion}?)` : ''}`;
}

/**
 * What each option takes and means, shared by the commands that accept it (docs/CLI.md says the same at length).
 * `[value, description]`; a boolean option has no value.
 */
export const OPTION_HELP: Record<string, [string, string]> = {
  model: ['PATH', 'model directory in any supported layout (docs/CLI.md, "Models")'],
  dtype: ['fp32|q8|q4', 'how linear weights are computed: fp32 (default, matches PyTorch), or quantised at load'],
  threads: ['N', 'compute threads (default: all cores)'],
  'cache-dir': ['DIR', "keep ORT's optimised decoder between runs (default: $EGRET_CACHE_DIR, else none)"],
  prompt: ['TEXT', "the question, rendered with --template (default: the model's own)"],
  template: ['raw|vicuna_v1|lavin_sqa', 'prompt template for --prompt'],
  ids: ['1,2,3', 'token ids instead of --prompt, no template; -200 marks where an image goes'],
  image: ['FILE', 'an image (PNG, JPEG, WebP, GIF first frame); repeatable, in the order of the placeholders'],
  'vtw-layer': ['K|off', 'withdraw visual tokens before decoder layer K (default: the calibrated layer, if saved)'],
  fastv: ['K:R', "FastV: drop the share R of visual tokens from layer K on, ranked by layer K-1's attention"],
  clip: ['FILE', "LaVIN: OpenAI's CLIP, a state dict or its TorchScript archive (with --adapter)"],
  adapter: ['FILE', 'LaVIN: the checkpoint of its adapters, checkpoint-N.pth (with --clip)'],
  'official-positions': ['', "LaVIN: decode at the released generator's positions (token j at j, not j + 1)"],
  'max-new-tokens': ['N', 'tokens to generate at most'],
  temperature: ['T', 'sampling temperature; 0 (default) is greedy'],
  'top-p': ['P', 'nucleus sampling: keep the smallest set of tokens whose probability reaches P'],
  'top-k': ['K', 'keep the K most likely tokens (0: all)'],
  'repetition-penalty': ['R', 'divide the logits of tokens already present by R (CTRL-style)'],
  seed: ['S', 'seed of the sampler'],
  stop: ['TEXT', 'stop when the text appears (repeatable); the stop text is not returned'],
  'ignore-eos': ['', 'keep generating past the end-of-sequence token'],
  json: ['', 'print one JSON document on stdout'],
  out: ['FILE', 'output file'],
  text: ['TEXT', 'the text to tokenise'],
  'no-bos': ['', 'do not prepend the BOS token'],
  host: ['ADDRESS', 'address to listen on (default 127.0.0.1)'],
  port: ['N', 'port to listen on (default 8080; 0: any free port)'],
  concurrency: ['N', 'requests generated at once (default 4)'],
  'max-queue': ['N', 'requests waiting beyond those (default 64); more are answered 429'],
  'allow-remote-images': ['', 'let requests give http(s) image URLs, fetched by the server'],
  data: ['PATH', 'the data to read'],
  eta: ['X', 'largest mean KL divergence allowed (default 0.003)'],
  'min-layer': ['K', 'smallest withdrawal layer considered (default 1)'],
  save: ['', "save the chosen layer beside the model; later runs use it by default"],
  predictions: ['FILE', 'answer file (JSON lines, LLaVA format)'],
  questions: ['FILE', 'question file (POPE: llava_pope_test.jsonl)'],
  split: ['NAME', 'ScienceQA split (default test)'],
  extract: ['llava|lavin', "how the answer letter is read: LLaVA's or LaVIN's script (default llava)"],
  images: ['DIR', 'folder of the questions\' images'],
  shard: ['i/n', 'answer the i-th of n contiguous parts (0-based); eval merge joins them'],
  limit: ['N', 'only the first N questions'],
  batch: ['B', 'questions generated together (default 1)'],
  task: ['smallprint|scienceqa', 'which generated task'],
  count: ['N', 'how many samples'],
  'vocab-size': ['N', 'pieces in the vocabulary, special and byte pieces included (default 1024)'],
};

/** --model's description in the commands that default it (generate, chat, serve). */
export const DEFAULT_MODEL_HELP = 'model directory (default: $EGRET_MODEL, else the lab model that ships with egret, models/lab-mra/)';

/** The help text: usage, summary, one line per option. */
export function formatHelp(help: CommandHelp): string {
  const rows = Object.entries(help.options).map(([name, config]) => {
    const [value, description] = OPTION_HELP[name] ?? ['', ''];
    const shown = config.type === 'boolean' ? `--${name}` : `--${name} ${value || 'VALUE'}`;
    return [shown, help.describe?.[name] ?? description] as const;
  });
  const width = Math.max(0, ...rows.map(([shown]) => shown.length));
  return `${help.usage}\n\n${help.summary}\n${rows.length ? `\noptions:\n${rows.map(([shown, d]) => `  ${shown.padEnd(width)}  ${d}`.trimEnd()).join('\n')}\n` : ''}`;
}
