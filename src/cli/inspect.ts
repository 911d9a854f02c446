import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { inspectCheckpoint } from '../io/inspect.js';

const USAGE = 'usage: egret inspect PATH [--json]';

/** `egret inspect PATH [--json]`: the tensors of a checkpoint file or model directory, no tensor data read. */
export async function inspectCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  } catch (err) {
    throw new InputError(`${(err as Error).message}; ${USAGE}`);
  }
  const { values, positionals } = parsed;
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
