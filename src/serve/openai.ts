/**
 * OpenAI Chat Completions: request validation (untrusted JSON → a typed request or a RequestError naming the
 * field) and the response shapes (completion, stream chunks, usage, errors).
 * https://platform.openai.com/docs/api-reference/chat
 */
import { randomInt } from 'node:crypto';
import { InputError } from '../errors.js';
import { isObject } from '../io/json.js';
import type { GenerateOptions } from '../generate/generate.js';
import { IMAGE_PLACEHOLDER } from '../text/image-prompt.js';
import type { ChatTurn } from '../text/templates.js';
import type { EngineResult } from './engine-worker.js';

/** A refused request: its HTTP status, and the field at fault (OpenAI's `param`). */
export class RequestError extends InputError {
  constructor(message: string, readonly status = 400, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

export interface ChatCompletionRequest {
  /** User and assistant turns for the model's template, system text folded into the first user turn. */
  turns: ChatTurn[];
  /** Image URLs in the order the turns' images appear. */
  imageUrls: string[];
  options: Omit<GenerateOptions, 'signal'>;
  stream: boolean;
  includeUsage: boolean;
  /** egret extension: VTW's withdrawal layer, `false` for none, absent for the server's default. */
  vtw?: number | false;
}

export interface RequestLimits {
  maxImages: number;
  /**
   * Most characters of message text. Tokenising runs in the inference worker: a 90 MB body of text would hold
   * every generation for a minute before the context check could refuse it.
   */
  maxTextChars: number;
  /** Default for max_tokens. */
  defaultMaxTokens: number;
}

type Json = unknown;
const describe = (v: Json) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

function fail(param: string, message: string): never {
  throw new RequestError(`${param}: ${message}`, 400, param, 'invalid_value');
}

function optionalNumber(body: Record<string, Json>, key: string, check: (x: number) => boolean, what: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) fail(key, `must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}

function optionalBoolean(body: Record<string, Json>, key: string, param = key): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(param, `must be a boolean, got ${describe(v)}`);
  return v;
}

/** The prompt's image placeholder may only come from image parts: as text it would claim an image that is not there. */
function checkText(text: string, param: string): string {
  if (text.includes(IMAGE_PLACEHOLDER)) fail(param, `text may not contain '${IMAGE_PLACEHOLDER}'; send images as image_url parts`);
  return text;
}

const ROLES = ['system', 'developer', 'user', 'assistant'] as const;

/** A message's content as text and image URLs (images only where `imagesAllowed`). */
function readContent(content: Json, param: string, imagesAllowed: boolean): { text: string; images: string[] } {
  if (typeof content === 'string') return { text: checkText(content, param), images: [] };
  if (!Array.isArray(content)) fail(param, `must be a string or an array of content parts, got ${describe(content)}`);
  const texts: string[] = [];
  const images: string[] = [];
  content.forEach((part, j) => {
    const p = `${param}[${j}]`;
    if (!isObject(part)) fail(p, `must be a content part object, got ${describe(part)}`);
    if (part['type'] === 'text') {
      if (typeof part['text'] !== 'string') fail(`${p}.text`, `must be a string, got ${describe(part['text'])}`);
      texts.push(checkText(part['text'], `${p}.text`));
    } else if (part['type'] === 'image_url') {
      if (!imagesAllowed) fail(p, 'images are accepted in user messages only');
      // OpenAI's shape is {url}; Ollama's examples pass the URL as a bare string.
      const image = part['image_url'];
      const url = isObject(image) ? image['url'] : image;
      if (typeof url !== 'string') fail(`${p}.image_url.url`, `must be a string, got ${describe(url)}`);
      images.push(url);
    } else {
      fail(`${p}.type`, `unsupported content part type ${JSON.stringify(part['type'])} (text, image_url)`);
    }
  });
  return { text: texts.join('\n'), images };
}

/**
 * Messages → template turns. System (and developer) messages are not a turn in the templates (vicuna_v1 has its
 * own fixed system prompt): their text is put before the first user message's. Consecutive messages of one role
 * are joined into one turn; the template checks that user and assistant then alternate.
 */
function readMessages(messages: Json, maxImages: number): { turns: ChatTurn[]; imageUrls: string[] } {
  if (!Array.isArray(messages) || messages.length === 0) fail('messages', `must be a non-empty array, got ${describe(messages)}`);
  const system: string[] = [];
  const turns: ChatTurn[] = [];
  const imageUrls: string[] = [];
  messages.forEach((message, i) => {
    const param = `messages[${i}]`;
    if (!isObject(message)) fail(param, `must be an object, got ${describe(message)}`);
    const role = message['role'];
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
      fail(`${param}.role`, `unknown or unsupported role ${JSON.stringify(role)} (${ROLES.join(', ')})`);
    }
    const { text, images } = readContent(message['content'], `${param}.content`, role === 'user');
    if (role === 'system' || role === 'developer') {
      system.push(text);
      return;
    }
    imageUrls.push(...images);
    if (imageUrls.length > maxImages) fail(`${param}.content`, `too many images: at most ${maxImages} per request`);
    const last = turns.at(-1);
    if (last?.role === role) {
      last.text = [last.text, text].filter((t) => t !== '').join('\n');
      last.images = (last.images ?? 0) + images.length;
    } else {
      turns.push(role === 'user' ? { role, text, images: images.length } : { role: 'assistant', text });
    }
  });
  const first = turns[0];
  if (system.length > 0 && first?.role === 'user') first.text = `${system.join('\n')}\n\n${first.text}`;
  return { turns, imageUrls };
}

function readStop(stop: Json): string[] {
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.length > 4 || list.some((s) => typeof s !== 'string' || s === '')) {
    fail('stop', 'must be a non-empty string or an array of at most 4 non-empty strings');
  }
  return list as string[];
}

/** `egret.vtw`: `{layer: K}` withdraws visual tokens before layer K, `false` turns VTW off. */
function readVtw(vtw: Json): number | false | undefined {
  if (vtw === undefined || vtw === null) return undefined;
  if (vtw === false) return false;
  if (!isObject(vtw)) fail('egret.vtw', `must be {"layer": K} or false, got ${describe(vtw)}`);
  const layer = optionalNumber(vtw, 'layer', (x) => Number.isInteger(x) && x >= 1, 'a positive integer (the decoder layer before which visual tokens are withdrawn)');
  if (layer === undefined) fail('egret.vtw.layer', 'is required');
  return layer;
}

/** Features of the API this server does not implement: refused rather than silently ignored. */
function refuseUnsupported(body: Record<string, Json>): void {
  const unsupported = (param: string, what: string) => {
    throw new RequestError(`${param}: ${what} is not supported by this server`, 400, param, 'unsupported_parameter');
  };
  if (body['n'] !== undefined && body['n'] !== null && body['n'] !== 1) unsupported('n', 'more than one choice');
  if (Array.isArray(body['tools']) && body['tools'].length > 0) unsupported('tools', 'tool calling');
  if (body['logprobs'] === true) unsupported('logprobs', 'returning log-probabilities');
  for (const key of ['presence_penalty', 'frequency_penalty']) {
    if (body[key] !== undefined && body[key] !== null && body[key] !== 0) unsupported(key, `a non-zero ${key}`);
  }
  const format = body['response_format'];
  if (isObject(format) && format['type'] !== 'text') unsupported('response_format', `response format ${JSON.stringify(format['type'])}`);
}

/** Validates a parsed JSON body. Unknown fields are ignored, as OpenAI-compatible servers do. */
export function parseChatRequest(body: Json, limits: RequestLimits): ChatCompletionRequest {
  if (!isObject(body)) throw new RequestError(`the request body must be a JSON object, got ${describe(body)}`);
  refuseUnsupported(body);
  const { turns, imageUrls } = readMessages(body['messages'], limits.maxImages);
  const chars = turns.reduce((n, t) => n + t.text.length, 0);
  if (chars > limits.maxTextChars) fail('messages', `the messages hold ${chars} characters of text, more than any context takes (at most ${limits.maxTextChars})`);
  const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;
  const maxTokens = optionalNumber(body, 'max_completion_tokens', positiveInt, 'a positive integer') ??
    optionalNumber(body, 'max_tokens', positiveInt, 'a positive integer') ?? limits.defaultMaxTokens;
  const streamOptions = body['stream_options'];
  if (streamOptions !== undefined && streamOptions !== null && !isObject(streamOptions)) fail('stream_options', `must be an object, got ${describe(streamOptions)}`);
  const egret = body['egret'];
  if (egret !== undefined && egret !== null && !isObject(egret)) fail('egret', `must be an object, got ${describe(egret)}`);
  const vtwLayer = readVtw(egret?.['vtw']);
  return {
    turns,
    imageUrls,
    stream: optionalBoolean(body, 'stream') ?? false,
    includeUsage: (streamOptions && optionalBoolean(streamOptions, 'include_usage', 'stream_options.include_usage')) ?? false,
    options: {
      maxNewTokens: maxTokens,
      // OpenAI's default temperature is 1, with a fresh random seed per request unless one is given.
      temperature: optionalNumber(body, 'temperature', (x) => x >= 0 && x <= 2, 'a number in [0, 2]') ?? 1,
      topP: optionalNumber(body, 'top_p', (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
      seed: optionalNumber(body, 'seed', Number.isSafeInteger, 'an integer') ?? randomInt(2 ** 32),
      stop: readStop(body['stop']),
      // Extensions vLLM also accepts.
      topK: optionalNumber(body, 'top_k', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
      repetitionPenalty: optionalNumber(body, 'repetition_penalty', (x) => x > 0, 'a number > 0'),
      ignoreEos: optionalBoolean(body, 'ignore_eos') ?? false,
    },
    ...(vtwLayer !== undefined ? { vtw: vtwLayer } : {}),
  };
}

// --- responses ---------------------------------------------------------------------------------------------

/** Where a completion comes from, shared by its response or chunks. */
export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

export function usage(r: EngineResult) {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

/** The `egret` object of responses: what the request cost. */
export function egretStats(r: EngineResult, queueMs: number) {
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    visual_tokens: r.visualTokens,
    visual_tokens_kept: r.visualTokensKept,
    vtw_layer: r.vtwLayer,
    flops: r.flops,
    queue_ms: round(queueMs),
    prefill_ms: round(r.prefillMs),
    decode_ms: round(r.decodeMs),
    tokens_per_second: r.decodeMs > 0 ? round((r.completionTokens * 1000) / r.decodeMs) : null,
  };
}

type FinishReason = 'stop' | 'length';

export function completion(who: CompletionIdentity, text: string, r: EngineResult, queueMs: number) {
  return {
    ...who,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: r.finishReason as FinishReason }],
    usage: usage(r),
    egret: egretStats(r, queueMs),
  };
}

export function chunk(who: CompletionIdentity, delta: { role?: 'assistant'; content?: string }, finishReason: FinishReason | null = null, extra: object = {}) {
  return { ...who, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...extra };
}

/** stream_options.include_usage: the last chunk, with no choices. */
export function usageChunk(who: CompletionIdentity, r: EngineResult, queueMs: number) {
  return { ...who, object: 'chat.completion.chunk', choices: [], usage: usage(r), egret: egretStats(r, queueMs) };
}

const ERROR_TYPES: Record<number, string> = { 404: 'not_found_error', 405: 'invalid_request_error', 413: 'invalid_request_error', 429: 'rate_limit_error', 500: 'server_error', 503: 'server_error' };

export function errorBody(status: number, message: string, param: string | null = null, code: string | null = null) {
  return { error: { message, type: ERROR_TYPES[status] ?? (status < 500 ? 'invalid_request_error' : 'server_error'), param, code } };
}
