import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * A module to pass to `node --import` that makes importing any of `packages` (bare specifiers, e.g.
 * `@grpc/grpc-js`) fail with `<package> was loaded`: in a static import graph the process fails at start,
 * so a test can prove that a command never loads them.
 */
export function refusingImport(packages: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-refuse-'));
  const hook = join(dir, 'refuse.mjs');
  writeFileSync(hook, `const refused = new Set(${JSON.stringify(packages)});\nexport async function resolve(specifier, context, next) {\n  if (refused.has(specifier)) throw new Error(specifier + ' was loaded');\n  return next(specifier, context);\n}\n`);
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
  return register;
}

/** Options for {@link runRefusing}. */
export interface RunRefusingOptions {
  /** Written to the process' stdin. */
  input?: string;
  /** Default 10 s. */
  timeoutMs?: number;
}

/**
 * Runs `node script ...args` to its end with {@link refusingImport}(`packages`): a command that loads none of them
 * behaves as without the hook; one that does fails, its stderr saying `<package> was loaded`.
 */
export function runRefusing(packages: readonly string[], script: string, args: readonly string[], options: RunRefusingOptions = {}): SpawnSyncReturns<string> {
  const { input, timeoutMs = 10_000 } = options;
  return spawnSync(process.execPath, ['--import', refusingImport(packages), script, ...args], { encoding: 'utf8', timeout: timeoutMs, ...(input === undefined ? {} : { input }) });
}
