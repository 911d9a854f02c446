// Imported by every test that runs the CLI: egret caches optimised models in the user's cache folder by default,
// and tests must write nothing outside their own temp folders. Each test process gets a private cache, removed
// when it exits; the children it spawns inherit it through EGRET_CACHE_DIR.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_CACHE_DIR = mkdtempSync(join(tmpdir(), 'egret-test-cache-'));
process.env['EGRET_CACHE_DIR'] = TEST_CACHE_DIR;
process.on('exit', () => rmSync(TEST_CACHE_DIR, { recursive: true, force: true }));
