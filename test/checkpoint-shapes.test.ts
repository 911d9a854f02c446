// A checkpoint whose tensor shapes disagree with its config (a norm of the wrong width, a projector of the wrong size)
// is an input error that names the tensor and both shapes (exit 2), not an internal graph error.
import { after, test } from 'node:test';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertInputError, egret } from './helpers/cli.js';

const FIXTURE = 'test/fixtures/tiny-llava15';
const work = mkdtempSync(join(tmpdir(), 'egret-shapes-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the fixture whose named tensors lose their last row (the header says so; the data is cut to match). */
function withoutLastRow(label: string, names: string[]): string {
  const dir = join(work, label);
  cpSync(FIXTURE, dir, { recursive: true });
  const file = readFileSync(join(FIXTURE, 'model.safetensors'));
  const length = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + length).toString('utf8')) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
  for (const name of names) {
    const entry = header[name]!;
    const rowBytes = (entry.data_offsets[1] - entry.data_offsets[0]) / entry.shape[0]!;
    entry.shape = [entry.shape[0]! - 1, ...entry.shape.slice(1)];
    entry.data_offsets[1] -= rowBytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([prefix, Buffer.from(json), file.subarray(8 + length)]));
  return dir;
}

const run = (dir: string) => egret('generate', '--model', dir, '--image', 'test/fixtures/images/rgba.png', '--prompt', 'hi', '--max-new-tokens', '2');

test('wrong widths of a norm and of the projector are input errors naming the tensor and both shapes', async () => {
  assertInputError(await run(withoutLastRow('norm', ['language_model.model.norm.weight'])),
    /checkpoint tensor 'language_model\.model\.norm\.weight' \[63\] does not fit the model its config describes: RMSNorm: .*\[batch, n, 64\]/);
  assertInputError(await run(withoutLastRow('projector-in', ['multi_modal_projector.linear_1.weight'])),
    /checkpoint tensor 'multi_modal_projector\.linear_1\.weight' \[63, 48\] does not fit .*\[batch, 16, 63\].*linear_1\.bias' float32\[64\]/);
  assertInputError(await run(withoutLastRow('projector-out', ['multi_modal_projector.linear_2.weight', 'multi_modal_projector.linear_2.bias'])),
    /checkpoint tensor 'multi_modal_projector\.linear_2\.weight' makes visual tokens 63 wide, but the language model's hidden size is 64/);
  assertInputError(await run(withoutLastRow('attention', ['language_model.model.layers.1.self_attn.o_proj.weight'])),
    /checkpoint tensor '.*layers\.1\..*' \[.*\] does not fit the model its config describes/);
});
