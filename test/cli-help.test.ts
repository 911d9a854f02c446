// Help and usage errors of every command: `egret <command> --help` and `egret help <command>` print the command's
// usage and every option its parser takes, exit 0; an unknown option is answered with the closest known one; and
// docs/CLI.md documents every option of every command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { CommandHelp } from '../src/cli/args.js';
import { closestName } from '../src/errors.js';
import { CALIBRATE_HELP } from '../src/cli/calibrate.js';
import { CHAT_HELP } from '../src/cli/chat.js';
import { SCORE_HELP } from '../src/cli/eval.js';
import { MERGE_HELP, RUN_HELP } from '../src/cli/eval-run.js';
import { GENERATE_HELP } from '../src/cli/generate.js';
import { INSPECT_HELP } from '../src/cli/inspect.js';
import { LAB_GENERATE_HELP, LAB_READOUT_HELP, LAB_TOKENIZER_HELP } from '../src/cli/lab.js';
import { LOGITS_HELP } from '../src/cli/logits.js';
import { MODEL_OPTIONS } from '../src/cli/model-args.js';
import { SERVE_HELP } from '../src/cli/serve.js';
import { TOKENIZE_HELP } from '../src/cli/tokenize.js';
import { TRAIN_HELP } from '../src/cli/train.js';
import { assertInputError, egret, ROOT } from './helpers/cli.js';

/** Every command line with its parser's options (model commands take the model options too). */
const withModel = (help: CommandHelp): CommandHelp => ({ ...help, options: { ...MODEL_OPTIONS, ...help.options } });
const COMMANDS: [string[], CommandHelp][] = [
  [['generate'], withModel(GENERATE_HELP)],
  [['chat'], withModel(CHAT_HELP)],
  [['logits'], withModel(LOGITS_HELP)],
  [['calibrate', 'vtw'], withModel(CALIBRATE_HELP)],
  [['eval', 'run'], withModel(RUN_HELP)],
  [['eval', 'score'], SCORE_HELP],
  [['eval', 'merge'], MERGE_HELP],
  [['serve'], SERVE_HELP],
  [['tokenize'], TOKENIZE_HELP],
  [['inspect'], INSPECT_HELP],
  [['train', 'lavin'], TRAIN_HELP],
  [['lab', 'generate'], LAB_GENERATE_HELP],
  [['lab', 'tokenizer'], LAB_TOKENIZER_HELP],
  [['lab', 'readout'], LAB_READOUT_HELP],
];

test('egret <command> --help and egret help <command> print the usage and every option, exit 0', async () => {
  for (const [words, help] of COMMANDS) {
    for (const run of [await egret(...words, '--help'), await egret('help', ...words)]) {
      assert.equal(run.code, 0, `${words.join(' ')}: ${run.stderr}`);
      assert.equal(run.stderr, '');
      assert.ok(run.stdout.startsWith(`usage: egret ${words.join(' ')}`), run.stdout);
      for (const name of Object.keys(help.options)) assert.match(run.stdout, new RegExp(`\\n  --${name}\\b`), `${words.join(' ')} --help lacks --${name}`);
    }
  }
  for (const words of [['--help'], ['help'], ['eval', '--help'], ['lab', '--help'], ['bench', '--help'], ['help', 'bench']]) {
    const run = await egret(...words);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^usage: egret/);
  }
});

test('an unknown option names the closest known one', async () => {
  assertInputError(await egret('generate', '--model', 'x', '--max-new-token', '3'), /unknown option --max-new-token \(did you mean --max-new-tokens\?\); usage: egret generate/);
  assertInputError(await egret('serve', '--hots', '127.0.0.2'), /unknown option --hots \(did you mean --host\?\)/);
  assertInputError(await egret('tokenize', '--txet', 'a'), /unknown option --txet \(did you mean --text\?\)/);
  assertInputError(await egret('eval', 'score', 'pope', '--predictons', 'p'), /did you mean --predictions\?/);
  assertInputError(await egret('inspect', '--jsno', 'x'), /did you mean --json\?/);
  assert.equal(closestName('max', ['max-new-tokens', 'model']), 'max-new-tokens');
  assert.equal(closestName('qwerty', ['model', 'image']), undefined);
  assertInputError(await egret('bench', '--thread=1'), /unknown option --thread \(did you mean --threads\?\)/);
  assertInputError(await egret('bench', 'matmull'), /unknown suite 'matmull' \(did you mean matmul\?/);
});

test('docs/CLI.md documents every option of every command, and the README links it', () => {
  const doc = readFileSync(`${ROOT}/docs/CLI.md`, 'utf8');
  for (const [words, help] of COMMANDS) {
    const heading = doc.indexOf(`\n### egret ${words.join(' ')}\n`);
    assert.ok(heading >= 0, `docs/CLI.md has no section '### egret ${words.join(' ')}'`);
    const section = doc.slice(heading + 1, doc.indexOf('\n### ', heading + 1) >>> 0 || undefined);
    const documented = new Set([...section.matchAll(/`--([a-z-]+)/g)].map((m) => m[1]));
    // The model options are documented once, in their own section, for every command that runs a model.
    const shared = section.includes('model options') ? new Set(Object.keys(MODEL_OPTIONS)) : new Set<string>();
    for (const name of Object.keys(help.options)) assert.ok(documented.has(name) || shared.has(name), `docs/CLI.md, egret ${words.join(' ')}: --${name} is not documented`);
  }
  assert.match(readFileSync(`${ROOT}/README.md`, 'utf8'), /\]\(docs\/CLI\.md\)/);
});
