import { readFileSync } from 'node:fs';

/** egret's version, from the package.json beside dist/ (recorded in results so that they can be traced). */
export const EGRET_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
