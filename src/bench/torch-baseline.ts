/**
 * The PyTorch side of the `llama` suite: torch_llama.py (shipped in the package beside this source) as a child
 * process answering one command per line, so that its calls interleave with egret's in the same rounds. Absent Python or torch, `start` says why and
 * the suite goes on without it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Debian's python3-torch lives under /usr/bin/python3; other interpreters on PATH may lack torch. */
export const DEFAULT_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const SCRIPT = fileURLToPath(new URL('../../../src/bench/torch_llama.py', import.meta.url));

export class TorchBaseline {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly reader: Interface,
    /** torch's version and thread count, as the script reports them. */
    readonly info: { torch: string; threads: number },
  ) {}

  /** Starts the script on a model directory; a string says why it could not start. */
  static async start(python: string, modelDir: string, threads: number): Promise<TorchBaseline | string> {
    const child = spawn(python, [SCRIPT, modelDir, String(threads)], { stdio: ['pipe', 'pipe', 'pipe'] });
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
      return `${python} ${SCRIPT} exited: ${stderr.trim().split('\n').at(-1) ?? 'no output'}`;
    }
    return new TorchBaseline(child, lines, reader, JSON.parse(first.value) as { torch: string; threads: number });
  }

  /** Sends one command and returns its answer line. */
  async request(command: string): Promise<string> {
    this.child.stdin.write(`${command}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error(`torch_llama.py ended during '${command}'`);
    return line.value;
  }

  async stop(): Promise<void> {
    const closed = new Promise((r) => this.child.once('close', r));
    this.child.stdin.end('quit\n');
    await closed;
    this.reader.close();
  }
}
