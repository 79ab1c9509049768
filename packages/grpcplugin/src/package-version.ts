import { readFileSync } from 'node:fs';

/**
 * The `version` of the package a module belongs to, read from the `package.json` one folder above it:
 * the bins run from `dist/` (and the tests from `src/`), so `packageVersion(import.meta.url)` in a bin
 * answers its own package's version, as `--version` prints it, wherever the package is installed.
 * @param moduleUrl the calling module's `import.meta.url`.
 * @throws Error when that package.json cannot be read or has no string `version`.
 */
export function packageVersion(moduleUrl: string): string {
  const file = new URL('../package.json', moduleUrl);
  const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
  if (typeof version !== 'string') throw new Error(`${file.pathname}: package.json has no version`);
  return version;
}
