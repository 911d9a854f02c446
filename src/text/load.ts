import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { expectObject, readJsonFile } from '../io/json.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import { TokenizerJson } from './tokenizer-json.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * The tokenizer of a model: `path` is a tokenizer.model or tokenizer.json file, or a model directory. A directory
 * holds tokenizer.model itself (HF layouts), or, for a Meta LLaMA directory (params.json), one level up (Meta's
 * release keeps `tokenizer.model` beside `7B/`). tokenizer.model is preferred: it is what LLaVA (use_fast=False)
 * and LaVIN tokenise with; tokenizer.json is used when it is the only one. In an HF layout, special and added
 * tokens written in the text are single ids, as transformers' slow LlamaTokenizer reads them. tokenizer_config.json (add_bos_token,
 * add_eos_token, bos_token, eos_token) and added_tokens.json (extra ids such as `<image>`) are honoured.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const kind = await pathKind(path);
  if (kind === 'missing') throw new InputError(`tokenizer path ${path} does not exist`);
  if (kind === 'file') {
    return path.endsWith('.json') ? TokenizerJson.fromFile(path) : SentencePieceTokenizer.fromFile(path);
  }
  const config = await readJsonObject(join(path, 'tokenizer_config.json'));
  const addBos = optionalBoolean(config, 'add_bos_token', path);
  const addEos = optionalBoolean(config, 'add_eos_token', path);
  const candidates = [join(path, 'tokenizer.model')];
  // Meta's layout is tokenised by SentencePiece itself (LaVIN); HF layouts by transformers' LlamaTokenizer.
  const meta = (await pathKind(join(path, 'params.json'))) === 'file';
  if (meta) candidates.push(join(dirname(path), 'tokenizer.model'));
  for (const file of candidates) {
    if ((await pathKind(file)) !== 'file') continue;
    const added = await readJsonObject(join(path, 'added_tokens.json'));
    return SentencePieceTokenizer.fromFile(file, {
      addBos,
      addEos,
      addedTokens: addedTokens(added, join(path, 'added_tokens.json')),
      specialTokensInText: !meta,
    });
  }
  const json = join(path, 'tokenizer.json');
  if ((await pathKind(json)) === 'file') {
    return TokenizerJson.fromFile(json, {
      addBos,
      addEos,
      bosToken: tokenName(config, 'bos_token', path),
      eosToken: tokenName(config, 'eos_token', path),
    });
  }
  throw new InputError(`no tokenizer.model or tokenizer.json in ${candidates.map(dirname).join(' or ')}`);
}

async function pathKind(path: string): Promise<'file' | 'dir' | 'missing'> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

/** An optional JSON object beside the tokenizer; undefined when the file is not there. */
async function readJsonObject(file: string): Promise<Record<string, unknown> | undefined> {
  const value = await readJsonFile(file, { optional: true });
  return value === undefined ? undefined : expectObject(value, file);
}

function optionalBoolean(config: Record<string, unknown> | undefined, key: string, dir: string): boolean | undefined {
  const value = config?.[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new InputError(`${join(dir, 'tokenizer_config.json')}: ${key} must be true or false`);
  return value;
}

/** tokenizer_config.json writes special tokens as a string or as {"content": ...}. */
function tokenName(config: Record<string, unknown> | undefined, key: string, dir: string): string | undefined {
  const value = config?.[key];
  if (value === undefined || value === null) return undefined;
  const content = typeof value === 'object' ? (value as Record<string, unknown>)['content'] : value;
  if (typeof content !== 'string') throw new InputError(`${join(dir, 'tokenizer_config.json')}: ${key} must be a string`);
  return content;
}

function addedTokens(json: Record<string, unknown> | undefined, file: string): Map<string, number> {
  const tokens = new Map<string, number>();
  for (const [content, id] of Object.entries(json ?? {})) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new InputError(`${file}: id of '${content}' must be a non-negative integer`);
    tokens.set(content, id as number);
  }
  return tokens;
}
