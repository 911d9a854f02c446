/**
 * The HTTP side of `egret serve`: routing, body limits, error answers in OpenAI's shape, Server-Sent Events,
 * and cancelling a generation the moment its client goes away. Inference runs in the engine's worker thread.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { InputError } from '../errors.js';
import { sniffImageFormat } from '../vision/decode.js';
import type { Engine } from './engine.js';
import { imageBytes, isFetched, type ImagePolicy } from './images.js';
import { Metrics } from './metrics.js';
import { chunk, completion, egretStats, errorBody, parseChatRequest, RequestError, usageChunk, type RequestLimits } from './openai.js';
import { ByteBudget, QueueFullError, Scheduler } from './scheduler.js';

export interface ServerOptions {
  /** The model's id in /v1/models and in responses. */
  modelName: string;
  /** What /v1/models says of the model besides its id and family: how it computes, its card's first line. */
  modelDetails: { dtype: string; card: string | null };
  concurrency: number;
  maxQueue: number;
  maxBodyBytes: number;
  /** Most bytes of request bodies held at once, all requests together. */
  maxBodyBytesInFlight: number;
  request: RequestLimits;
  images: ImagePolicy;
  /** VTW layer for requests that do not choose (the model's calibrated one), if any. */
  defaultVtwLayer?: number;
  /** The server listens on a loopback address: only loopback Host names are answered (DNS-rebinding guard). */
  loopback?: boolean;
}

/**
 * Whether a host name or address is loopback: localhost, any IPv4 address of 127.0.0.0/8, or ::1 (bracketed or
 * not). Literal addresses cannot be rebound by DNS, so every one of them is the server's own name.
 */
export function isLoopbackName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === 'localhost' || lower === '::1' || lower === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lower);
}

/**
 * Web pages of other sites must not drive the server through the user's browser: a cross-origin request (its
 * Origin differs from the Host it was sent to) is refused, and on loopback so is any Host that is not a loopback
 * name — a page whose own name resolves to 127.0.0.1 (DNS rebinding) would otherwise pass as same-origin.
 * Clients that are not browsers (curl, the openai package) send no Origin.
 */
function refuseForeignPages(req: IncomingMessage, opts: ServerOptions): void {
  const host = req.headers.host ?? '';
  if (opts.loopback) {
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    if (!isLoopbackName(name)) throw new RequestError(`Host '${host}' is not a loopback name: this server listens on loopback only`, 403, null, 'forbidden');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new RequestError(`malformed Origin '${origin}'`, 400, null, 'invalid_request');
    }
    if (originHost !== host) throw new RequestError(`cross-origin request from ${origin} refused`, 403, null, 'forbidden');
  } else if (origin === 'null') {
    throw new RequestError('requests from opaque origins are refused', 403, null, 'forbidden');
  }
}

const UI_PAGE = new URL('../../../src/serve/ui/index.html', import.meta.url);
/** The package's example images (examples/README.md), offered by the web UI. */
const EXAMPLES = new URL('../../../examples/', import.meta.url);

/**
 * The example images by name (the files whose bytes are an image egret decodes), read once, as they are small: only
 * these names are served, so no request's path reaches the disk.
 */
async function readExamples(): Promise<Map<string, { type: string; bytes: Buffer }>> {
  const names = (await readdir(EXAMPLES, { withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name).sort();
  const examples = new Map<string, { type: string; bytes: Buffer }>();
  for (const name of names) {
    const bytes = await readFile(new URL(name, EXAMPLES));
    const format = sniffImageFormat(bytes);
    if (format) examples.set(name, { type: `image/${format}`, bytes });
  }
  return examples;
}

interface Context {
  engine: Engine;
  opts: ServerOptions;
  scheduler: Scheduler;
  bodies: ByteBudget;
  metrics: Metrics;
  page: Buffer;
  examples: Map<string, { type: string; bytes: Buffer }>;
  started: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, ctx: Context) => Promise<void> | void;

const ROUTES: Record<string, { method: string; handler: Handler }> = {
  '/': { method: 'GET', handler: (_req, res, ctx) => send(res, 200, 'text/html; charset=utf-8', ctx.page) },
  '/health': {
    method: 'GET',
    // 503 once the engine is gone, so that a supervisor or load balancer replaces this process.
    handler: (_req, res, ctx) => sendJson(res, ctx.engine.failed ? 503 : 200, {
      status: ctx.engine.failed ? 'failed' : 'ok',
      ...(ctx.engine.failed ? { error: ctx.engine.failed.message } : {}),
      model: ctx.opts.modelName,
      layers: ctx.engine.info.layers,
      vtw_layer: ctx.opts.defaultVtwLayer ?? null,
      active: ctx.scheduler.active,
      queued: ctx.scheduler.queued,
      batch_size: ctx.engine.batch().batchSize,
    }),
  },
  '/metrics': {
    method: 'GET',
    handler: (_req, res, ctx) => send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', ctx.metrics.render({ queued: ctx.scheduler.queued, active: ctx.scheduler.active, batch: ctx.engine.batch() })),
  },
  '/v1/models': {
    method: 'GET',
    handler: (_req, res, ctx) => sendJson(res, 200, {
      object: 'list',
      data: [{ id: ctx.opts.modelName, object: 'model', created: ctx.started, owned_by: 'egret', egret: { family: ctx.engine.info.family, ...ctx.opts.modelDetails } }],
    }),
  },
  '/examples': {
    method: 'GET',
    handler: (_req, res, ctx) => sendJson(res, 200, { object: 'list', data: [...ctx.examples.keys()].map((name) => ({ name, url: `/examples/${encodeURIComponent(name)}` })) }),
  },
  '/v1/chat/completions': { method: 'POST', handler: chatCompletions },
};

/** GET /examples/NAME: one of the example images. */
const EXAMPLE_IMAGE: { method: string; handler: Handler } = {
  method: 'GET',
  handler: (req, res, ctx) => {
    const name = (req.url ?? '').split('?')[0]!.slice('/examples/'.length);
    let image;
    try {
      image = ctx.examples.get(decodeURIComponent(name));
    } catch {} // malformed percent-encoding names no example
    if (!image) throw new RequestError(`no example image '${name}'`, 404, null, 'not_found');
    send(res, 200, image.type, image.bytes);
  },
};

export async function createChatServer(engine: Engine, opts: ServerOptions): Promise<Server> {
  const ctx: Context = {
    engine,
    opts,
    scheduler: new Scheduler(opts.concurrency, opts.maxQueue),
    bodies: new ByteBudget(opts.maxBodyBytesInFlight),
    metrics: new Metrics(),
    page: await readFile(UI_PAGE),
    examples: await readExamples(),
    started: Math.floor(Date.now() / 1000),
  };
  const server = createServer((req, res) => {
    // Not `new URL()`: it throws on request targets the HTTP parser lets through (`GET http://[`).
    const path = (req.url ?? '/').split('?')[0]!;
    const route = Object.hasOwn(ROUTES, path) ? ROUTES[path] : path.startsWith('/examples/') ? EXAMPLE_IMAGE : undefined; // inherited names are not routes
    const arrived = performance.now();
    res.on('close', () => {
      ctx.metrics.requests.inc({ path: route === EXAMPLE_IMAGE ? '/examples/*' : route ? path : 'other', status: res.writableFinished ? String(res.statusCode) : 'disconnected' });
      if (path === '/v1/chat/completions') ctx.metrics.latency.observe((performance.now() - arrived) / 1000);
    });
    const run = async () => {
      refuseForeignPages(req, ctx.opts);
      if (!route) throw new RequestError(`no route ${path}`, 404, null, 'not_found');
      if (req.method !== route.method) {
        res.setHeader('Allow', route.method);
        throw new RequestError(`${path} takes ${route.method}, not ${req.method}`, 405, null, 'method_not_allowed');
      }
      await route.handler(req, res, ctx);
    };
    run().catch((err: unknown) => answerError(res, err));
  });
  // A request must arrive whole within this time (Node's default is 300 s), so that a client that declares a large
  // body and stalls does not hold its share of the body budget for long.
  server.requestTimeout = 120_000;
  return server;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json', JSON.stringify(body), headers);
}

/** Any failure → an OpenAI-shaped error: 4xx for the client's fault, 500 (and a log line) for ours. */
function answerError(res: ServerResponse, err: unknown): void {
  if (!(err instanceof InputError || err instanceof QueueFullError)) process.stderr.write(`egret serve: internal failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  const message = err instanceof Error ? err.message : String(err);
  if (res.destroyed) return; // the client is gone; nobody to tell
  if (res.headersSent) {
    // Mid-stream: the status is already 200, so the error travels as an event and the stream ends.
    res.end(`data: ${JSON.stringify(errorBody(500, message))}\n\n`);
    return;
  }
  if (err instanceof QueueFullError) return sendJson(res, 429, errorBody(429, message, null, 'rate_limit_exceeded'), { 'Retry-After': '1' });
  if (err instanceof RequestError) {
    // An unread body (413, 503) is not drained: the connection closes instead.
    const headers: Record<string, string> = err.status === 413 || err.status === 503 ? { Connection: 'close' } : {};
    if (err.status === 503) headers['Retry-After'] = '1';
    return sendJson(res, err.status, errorBody(err.status, message, err.param, err.code), headers);
  }
  if (err instanceof InputError) return sendJson(res, 400, errorBody(400, message, null, 'invalid_request'));
  sendJson(res, 500, errorBody(500, 'internal server error'));
}

const serverBusy = () => new RequestError('the server is receiving too much data at once; retry later', 503, null, 'server_busy');

/**
 * The body, refused (413) as soon as it is known to be longer than `limit`, or (503) when it does not fit in the
 * server's budget for bodies in flight; `held` counts what it took from the budget, for the caller to give back.
 */
function readBody(req: IncomingMessage, limit: number, budget: ByteBudget, held: { bytes: number }): Promise<Buffer> {
  const tooLarge = (size: number) => new RequestError(`the request body has ${size} bytes or more, above the limit of ${limit} bytes`, 413, null, 'request_too_large');
  const take = (bytes: number) => budget.take(bytes) && ((held.bytes += bytes), true);
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(declared));
  // A declared length is reserved up front; a chunked body as it arrives.
  if (declared > 0 && !take(declared)) return Promise.reject(serverBusy());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (data: Buffer) => {
      size += data.length;
      const error = size > limit ? tooLarge(size) : size > held.bytes && !take(size - held.bytes) ? serverBusy() : undefined;
      if (!error) return void chunks.push(data);
      req.off('data', onData);
      req.pause();
      reject(error);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    // A client that leaves mid-body is its own fault, not a server failure (and is not answered: it is gone).
    req.on('error', (err) => reject(new RequestError(`reading the request body failed: ${err.message}`)));
    req.on('close', () => reject(new RequestError('the client closed the connection before the body was complete'))); // no-op once resolved
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new RequestError(`the request body is not valid JSON: ${(err as Error).message}`, 400, null, 'invalid_json');
  }
}

const SSE_HEADERS = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' };

async function chatCompletions(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  // The body's bytes stay counted until the answer is complete: its images live on as long.
  const held = { bytes: 0 };
  try {
    await answerChat(req, res, ctx, held);
  } finally {
    ctx.bodies.give(held.bytes);
  }
}

async function answerChat(req: IncomingMessage, res: ServerResponse, ctx: Context, held: { bytes: number }): Promise<void> {
  const arrived = performance.now();
  if (ctx.engine.failed) throw new RequestError(`the inference engine has stopped (${ctx.engine.failed.message}); restart the server`, 503, null, 'engine_failed');
  // The client going away (before or during generation) aborts: it leaves the queue or its generation stops.
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new Error('the client disconnected'));
  });
  const request = parseChatRequest(parseJson(await readBody(req, ctx.opts.maxBodyBytes, ctx.bodies, held)), ctx.opts.request);
  // Fetched images count against the budget for bodies too, at their largest allowed size.
  const fetchBytes = request.imageUrls.filter((url) => isFetched(url, ctx.opts.images)).length * ctx.opts.images.maxBytes;
  if (!ctx.bodies.take(fetchBytes)) throw serverBusy();
  held.bytes += fetchBytes;
  const images = await Promise.all(request.imageUrls.map((url, i) => imageBytes(url, i, ctx.opts.images)));
  let release: () => void;
  try {
    release = await ctx.scheduler.acquire(gone.signal);
  } catch (err) {
    if (gone.signal.aborted) return;
    throw err;
  }
  const queueMs = performance.now() - arrived;
  ctx.metrics.queueWait.observe(queueMs / 1000);
  try {
    const vtwLayer = request.vtw ?? ctx.opts.defaultVtwLayer;
    const generation = ctx.engine.chat({ turns: request.turns, images, options: request.options, ...(vtwLayer ? { vtwLayer } : {}) });
    gone.signal.addEventListener('abort', () => generation.cancel(), { once: true });
    const who = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: ctx.opts.modelName };
    const event = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    let text = '';
    let firstText = true;
    for await (const e of generation) {
      if (gone.signal.aborted) continue; // draining until the worker has stopped, so the turn ends only then
      if (e.type === 'prompt') {
        // From here on the request is accepted: errors before this point were answered as 4xx.
        if (request.stream) {
          res.writeHead(200, SSE_HEADERS);
          event(chunk(who, { role: 'assistant', content: '' }));
        }
        continue;
      }
      if (firstText) ctx.metrics.firstToken.observe((performance.now() - arrived) / 1000);
      firstText = false;
      if (request.stream) event(chunk(who, { content: e.text }));
      else text += e.text;
    }
    const result = await generation.result;
    ctx.metrics.promptTokens.inc({}, result.promptTokens);
    ctx.metrics.completionTokens.inc({}, result.completionTokens);
    if (result.finishReason === 'cancelled') {
      ctx.metrics.cancelled.inc();
      return;
    }
    if (!request.stream) return sendJson(res, 200, completion(who, text, result, queueMs));
    event(chunk(who, {}, result.finishReason, { egret: egretStats(result, queueMs) }));
    if (request.includeUsage) event(usageChunk(who, result, queueMs));
    res.end('data: [DONE]\n\n');
  } finally {
    release();
  }
}
