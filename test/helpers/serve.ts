// Starts `egret serve` as a child process on a free loopback port, for the serve-*.test.ts files.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import './env.js';

export interface RunningServer {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the server wrote on stderr so far. */
  log(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s); returns the exit code. */
  stop(): Promise<number | null>;
}

export function startServer(model: string, ...args: string[]): Promise<RunningServer> {
  return startServerWith(['--model', model, ...args]);
}

/** `egret serve --port 0 --threads 1` with these arguments and environment (without --model: the default model). */
export async function startServerWith(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  const child = spawn(process.execPath, ['bin/egret', 'serve', '--port', '0', '--threads', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  let host = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`egret serve did not start within 60 s:\n${stderr}`)), 60_000);
    child.stderr!.on('data', (data: Buffer) => {
      stderr += data.toString();
      const m = /listening on http:\/\/([^\s/]+):(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        host = m[1]!;
        resolve(Number(m[2]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`egret serve exited (${code}) before listening:\n${stderr}`));
    });
  });
  return {
    url: `http://${host}:${port}`,
    port,
    child,
    log: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return child.exitCode;
    },
  };
}

/** A file as a data: URL, as clients send images. */
export async function dataUrl(path: string, type = 'image/png'): Promise<string> {
  return `data:${type};base64,${(await readFile(path)).toString('base64')}`;
}

/** One value of a Prometheus metric (the first sample whose name and labels start with `sample`). */
export function metric(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `) || l.startsWith(`${sample}{`));
  if (!line) throw new Error(`no metric ${sample} in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The `data:` payloads of a Server-Sent Events body. */
export function sseData(body: string): string[] {
  return body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
}
