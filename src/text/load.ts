import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * The tokenizer of a model: `path` is a tokenizer.model file or a model directory. A directory holds
 * tokenizer.model itself (HF layouts), or, for a Meta LLaMA directory (params.json), one level up (Meta's release
 * keeps `tokenizer.model` beside `7B/`). tokenizer_config.json (add_bos_token, add_eos_token) and
 * added_tokens.json (extra ids such as `<image>`) are honoured when present beside it.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const kind = await pathKind(path);
  if (kind === 'missing') throw new InputError(`tokenizer path ${path} does not exist`);
  if (kind === 'file') return SentencePieceTokenizer.fromFile(path);
  const candidates = [join(path, 'tokenizer.model')];
  if ((await pathKind(join(path, 'params.json'))) === 'file') candidates.push(join(dirname(path), 'tokenizer.model'));
  for (const file of candidates) {
    if ((await pathKind(file)) !== 'file') continue;
    const config = await readJsonObject(join(path, 'tokenizer_config.json'));
    const added = await readJsonObject(join(path, 'added_tokens.json'));
    return SentencePieceTokenizer.fromFile(file, {
      addBos: optionalBoolean(config, 'add_bos_token', path),
      addEos: optionalBoolean(config, 'add_eos_token', path),
      addedTokens: addedTokens(added, join(path, 'added_tokens.json')),
    });
  }
  const hint = (await pathKind(join(path, 'tokenizer.json'))) === 'file' ? ' (tokenizer.json alone is not supported)' : '';
  throw new InputError(`no tokenizer.model in ${candidates.map(dirname).join(' or ')}${hint}`);
}

async function pathKind(path: string): Promise<'file' | 'dir' | 'missing'> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

async function readJsonObject(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: invalid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function optionalBoolean(config: Record<string, unknown> | undefined, key: string, dir: string): boolean | undefined {
  const value = config?.[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new InputError(`${join(dir, 'tokenizer_config.json')}: ${key} must be true or false`);
  return value;
}

function addedTokens(json: Record<string, unknown> | undefined, file: string): Map<string, number> {
  const tokens = new Map<string, number>();
  for (const [content, id] of Object.entries(json ?? {})) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new InputError(`${file}: id of '${content}' must be a non-negative integer`);
    tokens.set(content, id as number);
  }
  return tokens;
}
