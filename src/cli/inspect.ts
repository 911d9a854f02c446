import { InputError } from '../errors.js';
import { inspectCheckpoint } from '../io/inspect.js';
import { parseCommandLine, type CommandHelp } from './args.js';

const USAGE = 'usage: egret inspect PATH [--json]';

/** `egret inspect PATH [--json]`: the tensors of a checkpoint file or model directory, no tensor data read. */
export const INSPECT_HELP: CommandHelp = {
  usage: USAGE,
  summary: 'Lists the tensors (name, dtype, shape) of a .safetensors / .bin / .pth file or a model directory without reading their data.',
  options: { json: { type: 'boolean' } },
  positionals: true,
};

export async function inspectCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(args, INSPECT_HELP);
  if (positionals.length !== 1) throw new InputError(USAGE);
  const { format, tensors } = await inspectCheckpoint(positionals[0]!);
  if (values.json) {
    process.stdout.write(JSON.stringify({ format, tensors: tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })) }) + '\n');
    return;
  }
  const width = Math.max(4, ...tensors.map((t) => t.name.length));
  const lines = [`format: ${format}, ${tensors.length} tensors`, `${'name'.padEnd(width)}  dtype  shape`];
  for (const { name, dtype, shape } of tensors) lines.push(`${name.padEnd(width)}  ${dtype.padEnd(5)}  [${shape.join(', ')}]`);
  process.stdout.write(lines.join('\n') + '\n');
}
