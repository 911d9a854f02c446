// DESIGN.md's layers: every import in src/ points down (or within its own folder), and nothing in src/ imports from
// outside src/ (the package ships src/ only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from './helpers/cli.js';

/** Bottom first. errors.ts and version.ts sit below everything; bench uses every layer the CLI does but the CLI. */
const LAYERS = ['errors.ts', 'version.ts', 'io', 'graph', 'runtime', 'text', 'vision', 'models', 'methods', 'generate', 'train', 'lab', 'eval', 'serve', 'bench', 'cli'];
const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('imports in src/ point down the layers of DESIGN.md and stay inside src/', () => {
  const wrong: string[] = [];
  for (const file of sources(SRC)) {
    const from = relative(SRC, file).split('/')[0]!;
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\()\s*'(\.[^']+)'/g)) {
      const target = relative(SRC, resolve(dirname(file), spec!));
      const to = target.split('/')[0]!.replace(/\.js$/, '.ts');
      if (target.startsWith('..')) wrong.push(`${relative(ROOT, file)} imports ${spec} from outside src/`);
      else if (!LAYERS.includes(from) || !LAYERS.includes(to)) wrong.push(`${relative(ROOT, file)} → ${target}: a folder DESIGN.md does not list`);
      else if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) wrong.push(`${relative(ROOT, file)} (${from}) imports ${target} (${to}, a higher layer)`);
    }
  }
  assert.deepEqual(wrong, []);
});
