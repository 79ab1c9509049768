// @ts-check
/**
 * Compiles every ```ts block of the READMEs and of the TSDoc `@example`s in package sources with
 * tsc (strict, NodeNext) against the built packages, so a snippet that drifts from the API fails
 * `pnpm lint`. Each snippet is a module of its own, placed in the package whose docs hold it (the
 * root README's in packages/grpcplugin), so it imports what that package's users can import:
 * its dependencies and, by its own name, the package itself. Run `pnpm build` first.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SNIPPET_DIR = '.snippets';

/** @param {string} dir @returns {string[]} the .ts files under `dir`, but not tests, generated code or build output */
function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return ['gen', 'dist', 'node_modules', SNIPPET_DIR].includes(entry.name) ? [] : sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** @param {string} text @returns {Array<{ line: number; code: string }>} the ```ts blocks of Markdown */
function markdownBlocks(text) {
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => ({ line: text.slice(0, m.index).split('\n').length, code: m[1] ?? '' }));
}

/** @param {string} text @returns {Array<{ line: number; code: string }>} the ```ts blocks inside the doc comments of a source file */
function tsdocBlocks(text) {
  return [...text.matchAll(/^[ \t]*\* ```ts\n((?:[ \t]*\*.*\n)*?)[ \t]*\* ```$/gm)].map((m) => ({
    line: text.slice(0, m.index).split('\n').length,
    code: (m[1] ?? '').replace(/^[ \t]*\* ?/gm, ''),
  }));
}

const workspaces = ['packages', 'examples'].flatMap((top) => readdirSync(join(root, top)).map((name) => join(root, top, name)));
/** @type {Array<{ home: string; origin: string; code: string }>} */
const snippets = [];
for (const dir of workspaces) {
  let readme = '';
  try {
    readme = readFileSync(join(dir, 'README.md'), 'utf8');
  } catch {
    // A workspace without a README has no README snippets.
  }
  for (const b of markdownBlocks(readme)) snippets.push({ home: dir, origin: `${relative(root, dir)}/README.md:${b.line}`, code: b.code });
  let files = [];
  try {
    files = sources(join(dir, 'src'));
  } catch {
    continue;
  }
  for (const file of files) {
    for (const b of tsdocBlocks(readFileSync(file, 'utf8'))) snippets.push({ home: dir, origin: `${relative(root, file)}:${b.line}`, code: b.code });
  }
}
for (const b of markdownBlocks(readFileSync(join(root, 'README.md'), 'utf8'))) {
  snippets.push({ home: join(root, 'packages', 'grpcplugin'), origin: `README.md:${b.line}`, code: b.code });
}

const homes = [...new Set(snippets.map((s) => s.home))];
for (const home of homes) rmSync(join(home, SNIPPET_DIR), { recursive: true, force: true });
/** @type {Map<string, string>} written file → where the snippet came from */
const origins = new Map();
snippets.forEach((s, i) => {
  mkdirSync(join(s.home, SNIPPET_DIR), { recursive: true });
  const file = join(s.home, SNIPPET_DIR, `snippet-${i}.ts`);
  // `export {}` makes each snippet a module: its names are its own, and top-level await is allowed.
  writeFileSync(file, `${s.code}\nexport {};\n`);
  origins.set(relative(root, file), s.origin);
});
const tsconfig = join(root, '.tmp', 'snippets.tsconfig.json');
mkdirSync(dirname(tsconfig), { recursive: true });
writeFileSync(
  tsconfig,
  JSON.stringify({
    extends: '../tsconfig.base.json',
    compilerOptions: { noEmit: true, noUnusedLocals: false },
    files: [...origins.keys()].map((f) => join('..', f)),
  }),
);
try {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig, '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
  console.log(`${snippets.length} TypeScript snippets from READMEs and TSDoc compile`);
} catch (err) {
  const out = String(/** @type {{ stdout?: string }} */ (err).stdout ?? err);
  // Name the README or source line instead of the generated file.
  console.error(out.replace(/^([^\s(]+\.snippets\/snippet-\d+\.ts)\((\d+),(\d+)\)/gm, (_, file, line, col) => `${origins.get(file) ?? file} (snippet line ${line}, column ${col})`));
  process.exitCode = 1;
} finally {
  for (const home of homes) rmSync(join(home, SNIPPET_DIR), { recursive: true, force: true });
}
