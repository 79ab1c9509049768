// @ts-check
/**
 * `pnpm mutate [target | file ...] [-- stryker options]`: mutation testing with
 * StrykerJS, one Stryker run per target, then one score line per target.
 *
 *   pnpm mutate                      every target in mutate-targets.mjs
 *   pnpm mutate sdk core-config      those targets
 *   pnpm mutate packages/core/src/receiver/auth.ts   one file (or glob), against its own tests
 *   pnpm mutate sdk -- --force       options after `--` go to `stryker run`
 *
 * Runs are incremental: only mutants in changed code, or covered by changed
 * tests, run again. Reports: reports/mutation/<target>/index.html and mutation.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { targets } from './mutate-targets.mjs';

const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const names = dashDash === -1 ? argv : argv.slice(0, dashDash);
const strykerArgs = dashDash === -1 ? [] : argv.slice(dashDash + 1);

/**
 * A target name, or a file or glob under packages/<package>/: a file with a
 * `.test.ts` beside it is mutated against that test, anything else against the
 * tests in its directory and below. The report is named after the path.
 * @param {string} name
 * @returns {{ target: string; spec: import('./mutate-targets.mjs').MutateSpec }}
 */
function resolve(name) {
  if (name in targets) return { target: name, spec: targets[name] };
  const [, pkg, file] = /^packages\/([^/]+)\/(.+)$/.exec(name) ?? [];
  if (!pkg || !file) {
    console.error(`pnpm mutate: ${JSON.stringify(name)} is neither a target (${Object.keys(targets).join(', ')}) nor a path under packages/<package>/`);
    process.exit(2);
  }
  const ownTest = file.replace(/\.ts$/, '.test.ts');
  const tests = ownTest !== file && existsSync(`packages/${pkg}/${ownTest}`) ? ownTest : `${dirname(file.replace(/[*{].*$/, 'x'))}/**/*.test.ts`;
  return { target: name.replace(/[^A-Za-z0-9.-]+/g, '_'), spec: { package: pkg, mutate: [file], tests: [tests] } };
}

/**
 * Stryker's mutation score: detected / (detected + undetected); compile errors and ignored mutants do not count.
 * @param {string} reportFile a mutation-testing-report-schema JSON report
 */
function score(reportFile) {
  /** @type {{ files: Record<string, { mutants: Array<{ status: string }> }> }} */
  const report = JSON.parse(readFileSync(reportFile, 'utf8'));
  const count = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0 };
  for (const file of Object.values(report.files)) {
    for (const { status } of file.mutants) if (status in count) count[/** @type {keyof typeof count} */ (status)]++;
  }
  const detected = count.Killed + count.Timeout;
  const valid = detected + count.Survived + count.NoCoverage;
  return { ...count, valid, score: valid === 0 ? NaN : (100 * detected) / valid };
}

const runs = (names.length > 0 ? names : Object.keys(targets)).map(resolve);
const lines = [];
let failed = false;
for (const { target, spec } of runs) {
  const started = Date.now();
  const env = { ...process.env, MUTATE_TARGET: target, MUTATE_SPEC: JSON.stringify(spec) };
  const result = spawnSync('stryker', ['run', 'stryker.config.mjs', ...strykerArgs], { stdio: 'inherit', env });
  const seconds = Math.round((Date.now() - started) / 1000);
  if (result.status !== 0) {
    failed = true;
    lines.push(`${target}: stryker failed (exit ${result.status ?? result.signal}) after ${seconds} s`);
    continue;
  }
  const s = score(`reports/mutation/${target}/mutation.json`);
  lines.push(
    `${target}: ${s.score.toFixed(2)}% (${s.Killed} killed, ${s.Timeout} timeout, ${s.Survived} survived, ${s.NoCoverage} no coverage) in ${seconds} s`,
  );
}
console.log(`\nMutation scores\n${lines.map((l) => `  ${l}`).join('\n')}`);
process.exit(failed ? 1 : 0);
