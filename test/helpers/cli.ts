import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import './env.js';

/** The repository root (tests run from dist/test). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `bin/egret` to completion, without blocking the test's event loop. */
export function egret(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/egret', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the real `bin/egret` to completion, synchronously. */
export function egretSync(...args: string[]): Run {
  const r = spawnSync(process.execPath, ['bin/egret', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** CONTRACT.md's bad input: exit 2, nothing on stdout, exactly one `error:` line on stderr, matching `pattern`. */
export function assertInputError(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, '');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern);
}
