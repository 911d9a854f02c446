import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError } from '../errors.js';
import { writeSafetensors } from '../io/safetensors-write.js';
import { prefillCall } from '../models/prompt.js';
import type { CommandHelp } from './args.js';
import { decodeImageArgs, openModel, parseCommandArgs, promptFromArgs } from './model-args.js';

const USAGE = 'usage: egret logits --model PATH (--prompt TEXT [--template T] | --ids 1,2,3) [--image FILE] --out FILE.safetensors';

/** `egret logits`: one prefill; the logits of every position that reaches the LM head, written as safetensors. */
export const LOGITS_HELP: CommandHelp = {
  usage: USAGE,
  summary: 'One prefill: the logits of every position that reaches the LM head, written as safetensors (logits F32 [n, vocab], positions I32 [n]).',
  options: { out: { type: 'string' } },
  describe: { out: 'the safetensors file to write' },
};

export async function logitsCommand(args: string[]): Promise<void> {
  const values = parseCommandArgs(args, LOGITS_HELP);
  if (!values.out) throw new InputError(`--out is required; ${USAGE}`);
  // Before the model loads: a wrong output folder should not cost a load and a prefill.
  if (!(await stat(dirname(values.out as string)).then((s) => s.isDirectory(), () => false))) {
    throw new InputError(`--out ${String(values.out)}: folder ${dirname(values.out as string)} does not exist`);
  }
  const images = await decodeImageArgs(values);
  const model = await openModel(values, USAGE);
  try {
    const { prompt } = await promptFromArgs(model, values, USAGE, images);
    const call = prefillCall(model.decoder, [prompt]);
    // Rows that reach the LM head, as indices of the expanded sequence (a method may have dropped some). Rows the
    // model computed once before the prompt (LaVIN's modality token) come first.
    const vocab = model.decoder.config.vocab;
    const leading = prompt.leadingLogits ?? new Float32Array(0);
    const first = leading.length / vocab;
    let rows = prompt.positions.map((_, i) => i);
    for (const layout of model.decoder.layouts(call).slice(1)) rows = layout.index[0]!.map((j) => rows[j]!);
    const { logits } = await model.decoder.forward(model.decoder.newCache(1), { ...call, logitRows: [rows.map((_, r) => r)] });
    const all = new Float32Array(leading.length + logits.length);
    all.set(leading);
    all.set(logits, leading.length);
    const positions = [...Array.from({ length: first }, (_, i) => i), ...rows.map((r) => r + first)];
    await writeSafetensors(values.out as string, {
      logits: { dtype: 'F32', shape: [positions.length, vocab], data: all },
      positions: { dtype: 'I32', shape: [positions.length], data: Int32Array.from(positions) },
    });
  } finally {
    await model.dispose();
  }
}
