import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changedSources, mergeReruns, survivorRanges } from './mutate-survivors.mjs';

type Status = 'Killed' | 'Survived' | 'NoCoverage' | 'Timeout';
const mutant = (id: string, line: number, status: Status, more: object = {}) => ({
  id, mutatorName: 'ConditionalExpression', replacement: 'true', status, location: { start: { line, column: 3 }, end: { line, column: 9 } }, ...more,
});

describe('pnpm mutate --survivors', () => {
  it('re-runs the line span of each undetected mutant, a changed file whole, and nothing of a deleted one', () => {
    const report = {
      files: {
        'packages/p/src/a.ts': { source: 'a', mutants: [mutant('1', 3, 'Killed'), mutant('2', 5, 'Survived'), mutant('3', 5, 'NoCoverage'), mutant('4', 8, 'NoCoverage')] },
        'packages/p/src/b.ts': { source: 'b', mutants: [mutant('5', 1, 'Survived')] },
        'packages/p/src/gone.ts': { source: 'g', mutants: [mutant('6', 2, 'Survived')] },
      },
    };
    expect(survivorRanges(report, 'p', { changed: ['packages/p/src/b.ts'], deleted: ['packages/p/src/gone.ts'] })).toEqual(['src/a.ts:5-5', 'src/a.ts:8-8', 'src/b.ts']);
  });

  it('tells changed and deleted sources from those the report mutated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mutate-survivors-'));
    const same = join(dir, 'same.ts');
    const edited = join(dir, 'edited.ts');
    writeFileSync(same, 'const a = 1;\n');
    writeFileSync(edited, 'const b = 3;\n');
    const report = { files: { [same]: { source: 'const a = 1;\n', mutants: [] }, [edited]: { source: 'const b = 2;\n', mutants: [] }, [join(dir, 'gone.ts')]: { source: '', mutants: [] } } };
    expect(changedSources(report)).toEqual({ changed: [edited], deleted: [join(dir, 'gone.ts')] });
  });

  it('puts the re-run results in place mutant by mutant, without the re-run\'s test references, and counts what it could not place', () => {
    const base = {
      files: {
        'packages/p/src/a.ts': { source: 'a', mutants: [mutant('1', 3, 'Killed', { killedBy: ['t1'] }), mutant('2', 5, 'Survived', { coveredBy: ['t2'] })] },
        'packages/p/src/b.ts': { source: 'b', mutants: [mutant('3', 1, 'Survived')] },
        'packages/p/src/gone.ts': { source: 'g', mutants: [mutant('4', 1, 'Survived')] },
      },
    };
    const rerun = {
      files: {
        'packages/p/src/a.ts': { source: 'a', mutants: [mutant('1', 5, 'Killed', { killedBy: ['0'], coveredBy: ['0'] }), mutant('2', 6, 'Killed')] },
        'packages/p/src/b.ts': { source: 'b2', mutants: [mutant('1', 1, 'Killed'), mutant('2', 2, 'Survived')] },
      },
    };
    const { report, replaced, unmatched } = mergeReruns(base, rerun, { changed: ['packages/p/src/b.ts'], deleted: ['packages/p/src/gone.ts'] });
    expect(report.files['packages/p/src/a.ts']!.mutants).toEqual([mutant('1', 3, 'Killed', { killedBy: ['t1'] }), mutant('rerun-1', 5, 'Killed')]);
    expect(report.files['packages/p/src/b.ts']).toEqual({ source: 'b2', mutants: [mutant('rerun-1', 1, 'Killed'), mutant('rerun-2', 2, 'Survived')] });
    expect(Object.keys(report.files)).toEqual(['packages/p/src/a.ts', 'packages/p/src/b.ts']);
    // One of a.ts and both of b.ts replaced; a.ts's line-6 mutant is not in the report.
    expect([replaced, unmatched]).toEqual([3, 1]);
  });
});
