/** The running tsoverlay version, from package.json beside dist/ ('unknown' if unreadable). */
import { readFile } from 'node:fs/promises';
import { S, compileCheck } from './util/schema.js';

const isPackageJson = compileCheck(S.object({ version: S.string() }));

export const packageVersion = async (): Promise<string> => {
  try {
    const pkg: unknown = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    return isPackageJson(pkg) ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
};
