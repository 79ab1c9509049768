// @ts-check
/**
 * `pnpm mutate --survivors <target>`: after new tests, runs Stryker again on the
 * lines of the target's last report that still had a survivor or a mutant
 * without coverage (and on the whole of each file whose source changed since),
 * against all of the target's tests, and merges the results into that report.
 * A mutant on any other line keeps its result: a test added can only kill more.
 * So it assumes tests were only added or made stricter since the report, and
 * measures no file added since: after removing tests, or for new files, run
 * the whole target. Far cheaper than a whole run of a package (41 min instead
 * of 85 for k8s-drain on 2026-11-30).
 */
import { existsSync, readFileSync } from 'node:fs';

/**
 * @typedef {{ line: number; column: number }} Position
 * @typedef {{ mutatorName: string; replacement?: string; status: string; location: { start: Position; end: Position } }} Mutant
 * @typedef {{ source: string; mutants: Mutant[] }} FileResult
 * @typedef {{ files: Record<string, FileResult> }} MutationReport
 */

/** @param {string} path @returns {MutationReport} */
export const readReport = (path) => JSON.parse(readFileSync(path, 'utf8'));

const undetected = (/** @type {Mutant} */ m) => m.status === 'Survived' || m.status === 'NoCoverage';

/**
 * Stryker `mutate` entries, relative to `packages/<pkg>`: each file of `changed` whole,
 * and in the others each line span that holds an undetected mutant (`src/file.ts:12-14`).
 * @param {MutationReport} report
 * @param {string} pkg
 * @param {{ changed: readonly string[]; deleted: readonly string[] }} since
 */
export function survivorRanges(report, pkg, { changed, deleted }) {
  const prefix = `packages/${pkg}/`;
  const ranges = new Set();
  for (const [file, result] of Object.entries(report.files)) {
    if (deleted.includes(file)) continue;
    const relative = file.slice(prefix.length);
    if (changed.includes(file)) ranges.add(relative);
    else for (const m of result.mutants.filter(undetected)) ranges.add(`${relative}:${m.location.start.line}-${m.location.end.line}`);
  }
  return [...ranges];
}

/**
 * Files whose source is no longer what the report mutated: their mutants' places
 * moved, so they are measured again whole. A file deleted since is left out of
 * the report.
 * @param {MutationReport} report
 * @returns {{ changed: string[]; deleted: string[] }}
 */
export function changedSources(report) {
  const changed = [];
  const deleted = [];
  for (const [file, result] of Object.entries(report.files)) {
    if (!existsSync(file)) deleted.push(file);
    else if (readFileSync(file, 'utf8') !== result.source) changed.push(file);
  }
  return { changed, deleted };
}

/** @param {Mutant} m */
const mutantKey = (m) => `${m.location.start.line}:${m.location.start.column}-${m.location.end.line}:${m.location.end.column} ${m.mutatorName} ${m.replacement ?? ''}`;

/**
 * `base` with each mutant that `rerun` ran again replaced by its new result, the
 * files of `changed` replaced whole and those of `deleted` left out. A replaced
 * mutant's test references (`killedBy`, `coveredBy`) name the re-run's tests,
 * not the report's, so they are dropped, and its id is made unique.
 * @param {MutationReport} base
 * @param {MutationReport} rerun
 * @param {{ changed: readonly string[]; deleted: readonly string[] }} since
 * @returns {{ report: MutationReport; replaced: number; unmatched: number }}
 */
export function mergeReruns(base, rerun, { changed, deleted }) {
  let replaced = 0;
  let unmatched = 0;
  /** @param {Mutant} m @returns {Mutant} */
  const fromRerun = (m) => {
    const { killedBy: _killedBy, coveredBy: _coveredBy, ...rest } = /** @type {Mutant & { id?: string; killedBy?: unknown; coveredBy?: unknown }} */ (m);
    return { ...rest, ...('id' in rest ? { id: `rerun-${rest.id}` } : {}) };
  };
  const files = Object.fromEntries(Object.entries(base.files).filter(([file]) => !deleted.includes(file)));
  for (const [file, result] of Object.entries(rerun.files)) {
    if (changed.includes(file)) {
      files[file] = { ...result, mutants: result.mutants.map(fromRerun) };
      replaced += result.mutants.length;
      continue;
    }
    const again = new Map(result.mutants.map((m) => [mutantKey(m), m]));
    const before = files[file]?.mutants ?? [];
    const mutants = before.map((m) => {
      const next = again.get(mutantKey(m));
      return next ? fromRerun(next) : m;
    });
    const matched = before.filter((m) => again.has(mutantKey(m))).length;
    replaced += matched;
    unmatched += again.size - matched;
    files[file] = { ...(files[file] ?? result), mutants };
  }
  return { report: { ...base, files }, replaced, unmatched };
}
