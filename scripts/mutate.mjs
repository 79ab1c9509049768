// @ts-check
/**
 * `pnpm mutate [target | file ...] [-- stryker options]`: mutation testing with
 * StrykerJS, one Stryker run per target, then one score line per target.
 *
 *   pnpm mutate                      every target in mutate-targets.mjs
 *   pnpm mutate sdk core-config      those targets
 *   pnpm mutate packages/core/src/receiver/auth.ts   one file (or glob), against its own tests
 *   pnpm mutate sdk -- --force       options after `--` go to `stryker run`
 *   pnpm mutate --survivors plugin-k8s-drain   only the lines of the last report with an undetected
 *                                    mutant (and files changed since), merged into it (mutate-survivors.mjs)
 *
 * Runs are incremental: only mutants in changed code, or covered by changed
 * tests, run again. Reports: reports/mutation/<target>/index.html and mutation.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { targets } from './mutate-targets.mjs';
import { changedSources, mergeReruns, readReport, survivorRanges } from './mutate-survivors.mjs';

const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const ours = dashDash === -1 ? argv : argv.slice(0, dashDash);
const survivorsOnly = ours.includes('--survivors');
const names = ours.filter((a) => a !== '--survivors');
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
 * @param {import('./mutate-survivors.mjs').MutationReport} report
 */
function score(report) {
  const count = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0 };
  for (const file of Object.values(report.files)) {
    for (const { status } of file.mutants) if (status in count) count[/** @type {keyof typeof count} */ (status)]++;
  }
  const detected = count.Killed + count.Timeout;
  const valid = detected + count.Survived + count.NoCoverage;
  return { ...count, valid, score: valid === 0 ? NaN : (100 * detected) / valid };
}

/** Where Stryker writes `target`'s JSON report (stryker.config.mjs). @param {string} target */
const reportPath = (target) => `reports/mutation/${target}/mutation.json`;

/** @param {ReturnType<typeof score>} s */
const scoreLine = (s) => `${s.score.toFixed(2)}% (${s.Killed} killed, ${s.Timeout} timeout, ${s.Survived} survived, ${s.NoCoverage} no coverage)`;

/**
 * Runs Stryker once; returns its report, or a line saying it failed.
 * @param {string} target the report's name
 * @param {import('./mutate-targets.mjs').MutateSpec} spec
 */
function runStryker(target, spec) {
  const started = Date.now();
  const env = { ...process.env, MUTATE_TARGET: target, MUTATE_SPEC: JSON.stringify(spec) };
  const result = spawnSync('stryker', ['run', 'stryker.config.mjs', ...strykerArgs], { stdio: 'inherit', env });
  const seconds = Math.round((Date.now() - started) / 1000);
  if (result.status !== 0) return { failure: `stryker failed (exit ${result.status ?? result.signal}) after ${seconds} s`, seconds };
  return { report: readReport(reportPath(target)), seconds };
}

/**
 * Re-runs the undetected mutants' lines of `target`'s last report and merges them into it.
 * @param {string} target
 * @param {import('./mutate-targets.mjs').MutateSpec} spec
 * @returns {string} the score line
 */
function rerunSurvivors(target, spec) {
  const reportFile = reportPath(target);
  if (!existsSync(reportFile)) throw new Error(`no report at ${reportFile}: run \`pnpm mutate ${target}\` first`);
  const base = readReport(reportFile);
  const since = changedSources(base);
  const { changed, deleted } = since;
  const mutate = survivorRanges(base, spec.package, since);
  if (mutate.length === 0) return `${scoreLine(score(base))}, nothing undetected to re-run`;
  const run = runStryker(`${target}-survivors`, { ...spec, mutate });
  if (!run.report) throw new Error(run.failure);
  const { report, replaced, unmatched } = mergeReruns(base, run.report, since);
  writeFileSync(reportFile, JSON.stringify(report));
  return (
    `${scoreLine(score(base))} -> ${scoreLine(score(report))}: ${mutate.length - changed.length} line spans` +
    (changed.length > 0 ? ` and ${changed.length} changed files (${changed.join(', ')})` : '') +
    (deleted.length > 0 ? `, ${deleted.length} deleted files left out (${deleted.join(', ')})` : '') +
    `, ${replaced} mutants re-run in ${run.seconds} s` +
    (unmatched > 0 ? `, ${unmatched} new mutants not in the report (not counted)` : '') +
    `; merged into ${reportFile} (its index.html is the whole run's; reports/mutation/${target}-survivors/index.html shows the re-run)`
  );
}

const runs = (names.length > 0 ? names : Object.keys(targets)).map(resolve);
const lines = [];
let failed = false;
for (const { target, spec } of runs) {
  if (survivorsOnly) {
    try {
      lines.push(`${target}: ${rerunSurvivors(target, spec)}`);
    } catch (err) {
      failed = true;
      lines.push(`${target}: ${err instanceof Error ? err.message : String(err)}`);
    }
    continue;
  }
  const run = runStryker(target, spec);
  if (!run.report) {
    failed = true;
    lines.push(`${target}: ${run.failure}`);
    continue;
  }
  lines.push(`${target}: ${scoreLine(score(run.report))} in ${run.seconds} s`);
}
console.log(`\nMutation scores\n${lines.map((l) => `  ${l}`).join('\n')}`);
process.exit(failed ? 1 : 0);
