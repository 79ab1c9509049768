import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * A module to pass to `node --import` that registers a module `resolve` hook whose body is `resolveBody` (JavaScript run
 * on Node's hooks thread, with `specifier`, `context` and `next` in scope; it must return `next(specifier, context)` or
 * throw): a test can fail, or hold, the import of a chosen module in a process it starts.
 */
export function resolveHook(resolveBody: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-hook-'));
  const hook = join(dir, 'hook.mjs');
  writeFileSync(hook, `export async function resolve(specifier, context, next) {\n${resolveBody}\n}\n`);
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
  return register;
}

/**
 * A module to pass to `node --import` that makes importing any of `packages` (bare specifiers, e.g.
 * `@grpc/grpc-js`) fail with `<package> was loaded`: in a static import graph the process fails at start,
 * so a test can prove that a command never loads them.
 */
export function refusingImport(packages: readonly string[]): string {
  return resolveHook(`if (new Set(${JSON.stringify(packages)}).has(specifier)) throw new Error(specifier + ' was loaded');\nreturn next(specifier, context);`);
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
