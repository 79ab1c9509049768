// @ts-check
/**
 * StrykerJS configuration for `pnpm mutate` (scripts/mutate.mjs), which runs
 * Stryker once per target with MUTATE_TARGET (the report name) and MUTATE_SPEC
 * (what to mutate and which tests to run, as JSON; see scripts/mutate-targets.mjs)
 * set. MUTATION.md explains the choices and the survivors that are left.
 */

/**
 * Prefixes each glob (negated or not) with `dir`.
 * @param {string} dir
 * @param {string[]} globs
 */
const inDirectory = (dir, globs) => globs.map((g) => (g.startsWith('!') ? `!${dir}/${g.slice(1)}` : `${dir}/${g}`));

const target = process.env.MUTATE_TARGET;
const spec = process.env.MUTATE_SPEC ? /** @type {import('./scripts/mutate-targets.mjs').MutateSpec} */ (JSON.parse(process.env.MUTATE_SPEC)) : undefined;
if (!target || !spec) throw new Error('stryker.config.mjs: MUTATE_TARGET and MUTATE_SPEC are not set; run it through `pnpm mutate`');
const dir = `packages/${spec.package}`;
const reports = `reports/mutation/${target}`;

// Stryker checks these options when it starts (and names an unknown one).
export default {
  // Named, because under pnpm Stryker's default `@stryker-mutator/*` scan only sees its own dependencies.
  plugins: ['@stryker-mutator/vitest-runner', '@stryker-mutator/typescript-checker'],
  testRunner: 'vitest',
  // Runs only the target's tests (MUTATE_SPEC.tests), never the e2e tests or the soak.
  // Not Stryker's `testFiles`: with it, Stryker 9.6 activates module-level (static) mutants
  // only after the modules are loaded, so they all survive.
  vitest: { configFile: 'vitest.mutate.config.ts', related: true },
  checkers: ['typescript'],
  tsconfigFile: `${dir}/tsconfig.json`,
  // Only the tests that reach a mutant run against it.
  coverageAnalysis: 'perTest',
  mutate: [...inDirectory(dir, spec.mutate), '!**/*.test.ts', '!**/test-support/**'],
  // The machine has two cores; each runner is one vitest worker.
  concurrency: 2,
  // Stryker's default: a mutant that hangs a test costs this much over the test's usual time.
  timeoutMS: 5_000,
  incremental: true,
  incrementalFile: `${reports}/incremental.json`,
  reporters: ['progress', 'clear-text', 'html', 'json'],
  htmlReporter: { fileName: `${reports}/index.html` },
  jsonReporter: { fileName: `${reports}/mutation.json` },
  clearTextReporter: { allowEmojis: false, logTests: false, reportScoreTable: true },
  // The sandbox needs sources, configs and the built dist/ of the workspace packages, not results.
  ignorePatterns: ['reports', 'bench/results', '.tmp', 'coverage'],
  tempDirName: '.stryker-tmp',
};
