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
