import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { readVtwSidecar, vtwSidecarPath } from '../methods/vtw.js';
import { Engine } from '../serve/engine.js';
import { createChatServer, isLoopbackName } from '../serve/http.js';
import { DEFAULT_MODEL_HELP, parseCommandLine, type CommandHelp } from './args.js';
import { loadOptionsFromArgs, modelOrDefault, positiveInt } from './model-args.js';

const USAGE = 'usage: egret serve [--model PATH] [--host 127.0.0.1] [--port 8080] [--dtype fp32|q8|q4] [--threads N] [--cache-dir DIR | --no-cache] ' +
  '[--concurrency N] [--max-queue N] [--allow-remote-images] [--clip FILE --adapter FILE [--official-positions]]';

const MiB = 1024 * 1024;

/**
 * `egret serve`: the OpenAI-compatible server and web UI. Prints `listening on http://HOST:PORT` on stderr once
 * the model is loaded (with --port 0, the port the system chose); runs until SIGINT or SIGTERM.
 */
export const SERVE_HELP: CommandHelp = {
  usage: USAGE,
  summary: 'The OpenAI-compatible HTTP server (/v1/chat/completions, /v1/models, /health, /metrics) and its web UI (docs/SERVE.md).',
  options: {
    model: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    dtype: { type: 'string' },
    'cache-dir': { type: 'string' },
    'no-cache': { type: 'boolean' },
    threads: { type: 'string' },
    concurrency: { type: 'string' },
    'max-queue': { type: 'string' },
    'allow-remote-images': { type: 'boolean', default: false },
    clip: { type: 'string' },
    adapter: { type: 'string' },
    'official-positions': { type: 'boolean' },
  },
  describe: { model: DEFAULT_MODEL_HELP },
};

export async function serveCommand(args: string[]): Promise<void> {
  const values = parseCommandLine(args, SERVE_HELP).values as {
    model?: string; host: string; port: string; dtype?: string; 'cache-dir'?: string; 'no-cache'?: boolean; threads?: string;
    concurrency?: string; 'max-queue'?: string; 'allow-remote-images': boolean; clip?: string; adapter?: string; 'official-positions'?: boolean;
  };
  const model = modelOrDefault(values, USAGE);
  if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) throw new InputError(`--port must be 0..65535, got '${values.port}'`);
  const concurrency = positiveInt(values.concurrency, 'concurrency', 4)!;
  const maxQueue = positiveInt(values['max-queue'], 'max-queue', 64)!;
  const maxPixels = 36_000_000; // 6000 x 6000: a decoded image is 3 bytes a pixel, per request in flight
  const maxImageBytes = 16 * MiB;
  // Room for the largest images base64-encoded (4 characters per 3 bytes), and the text around them.
  const maxBodyBytes = 4 * Math.ceil((4 / 3) * maxImageBytes) + MiB;
  const vtw = await readVtwSidecar(vtwSidecarPath(model, values.adapter));
  const loadOptions = loadOptionsFromArgs(values);
  const engine = await Engine.start(model, loadOptions, { maxPixels, maxBytes: maxImageBytes }, concurrency);
  try {
    const server = await createChatServer(engine, {
      modelName: basename(resolve(model)),
      modelDetails: { dtype: loadOptions.dtype ?? 'fp32', card: cardTitle(await readFile(join(model, 'README.md'), 'utf8').catch(() => '')) },
      concurrency,
      maxQueue,
      maxBodyBytes,
      // Enough for the requests that can run and wait to hold large images, bounded so uploads cannot exhaust memory.
      maxBodyBytesInFlight: Math.min(concurrency + maxQueue, 8) * maxBodyBytes,
      request: { maxImages: 4, defaultMaxTokens: 512, maxTextChars: 1_000_000 },
      images: { allowRemote: values['allow-remote-images'], maxBytes: maxImageBytes, fetchTimeoutMs: 10_000 },
      ...(vtw ? { defaultVtwLayer: vtw.layer } : {}),
      loopback: isLoopbackName(values.host),
    });
    await new Promise<void>((ready, failed) => {
      server.once('error', (err: NodeJS.ErrnoException) => failed(new InputError(`cannot listen on ${values.host}:${values.port}: ${err.code ?? err.message}`)));
      server.listen(Number(values.port), values.host, ready);
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : values.port;
    const host = values.host.includes(':') ? `[${values.host}]` : values.host;
    process.stderr.write(`listening on http://${host}:${port}${vtw ? ` (VTW layer ${vtw.layer} by default)` : ''}\n`);
    await new Promise<void>((stopped) => {
      const stop = () => {
        server.close(() => stopped());
        server.closeAllConnections();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  } finally {
    await engine.close();
  }
}

/**
 * The first line of a model card (README.md in the model's folder, as Hugging Face keeps it), after any YAML front
 * matter, without Markdown's heading marks; null for a card with no text.
 */
export function cardTitle(markdown: string): string | null {
  const body = markdown.replace(/^---\r?\n[\s\S]*?\r?\n---\r?\n/, '');
  const line = body.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return line ? line.replace(/^#+\s*/, '') : null;
}
