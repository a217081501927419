/**
 * This build's version: `version` of the package.json beside `dist/` (or
 * `src/` under the test runner), read once. Shown by `tsoverlay --version`, in
 * the start-up log line and in this node's record in the store, so a rolling
 * upgrade shows which node runs what.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The package version, or 'unknown' if package.json is missing or has none. */
export const packageVersion = (): string => {
  if (cached !== undefined) return cached;
  try {
    // dist/version.js and src/version.ts both sit one level below the package root
    const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    const version = typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
    cached = typeof version === 'string' && version !== '' ? version : 'unknown';
  } catch {
    cached = 'unknown';
  }
  return cached;
};
