/**
 * The PyTorch side of the `llama` and `lavin-train` suites: a script shipped in the package beside this source
 * (torch_llama.py, torch_lavin_train.py) as a child process answering one command per line, so that its calls
 * interleave with egret's in the same rounds. Absent Python or torch, `start` says why and the suite goes on without it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Debian's python3-torch lives under /usr/bin/python3; other interpreters on PATH may lack torch. */
export const DEFAULT_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A script of this folder, as shipped in the package. */
const script = (name: string) => fileURLToPath(new URL(`../../../src/bench/${name}`, import.meta.url));

export class TorchBaseline<Info = { torch: string; threads: number }> {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly reader: Interface,
    /** What the script reports on its first line (torch's version, thread count, …). */
    readonly info: Info,
    private readonly name: string,
  ) {}

  /** Starts torch_llama.py on a model directory; a string says why it could not start. */
  static start(python: string, modelDir: string, threads: number): Promise<TorchBaseline | string> {
    return TorchBaseline.launch(python, 'torch_llama.py', [modelDir, String(threads)]);
  }

  /**
   * Starts script `name` of this folder with `args` (and `env` added to this process's environment), and waits for
   * its first line, a JSON document; a string says why it could not start.
   */
  static async launch<Info>(python: string, name: string, args: readonly string[], env: Record<string, string> = {}): Promise<TorchBaseline<Info> | string> {
    const file = script(name);
    const child = spawn(python, [file, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const spawned = await new Promise<string | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (e) => resolve(e.message));
    });
    if (spawned) return `${python}: ${spawned}`;
    const reader = createInterface({ input: child.stdout });
    const lines = reader[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) {
      await new Promise((r) => child.once('close', r));
      return `${python} ${file} exited: ${stderr.trim().split('\n').at(-1) ?? 'no output'}`;
    }
    return new TorchBaseline(child, lines, reader, JSON.parse(first.value) as Info, name);
  }

  /** Sends one command and returns its answer line. */
  async request(command: string): Promise<string> {
    this.child.stdin.write(`${command}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error(`${this.name} ended during '${command}'`);
    return line.value;
  }

  async stop(): Promise<void> {
    const closed = new Promise((r) => this.child.once('close', r));
    this.child.stdin.end('quit\n');
    await closed;
    this.reader.close();
  }
}
