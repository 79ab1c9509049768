import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/** The part of MUTATE_SPEC (set by scripts/mutate.mjs) this file reads. */
interface TestSpec {
  package: string;
  tests: string[];
}

const spec = JSON.parse(process.env.MUTATE_SPEC ?? 'null') as TestSpec | null;
const tests = spec?.tests ?? [];
const inPackage = (glob: string): string => `packages/${spec?.package}/${glob.replace(/^!/, '')}`;

/**
 * The suite as `pnpm mutate` runs it against each mutant: only the tests of the
 * target being mutated (MUTATE_SPEC), never the e2e tests, which drive real
 * Prometheus and Alertmanager binaries, nor the soak. No JSON report: the
 * sandbox's copy would only be thrown away.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: spec ? tests.filter((g) => !g.startsWith('!')).map(inPackage) : base.test?.include,
    exclude: [...(base.test?.exclude ?? []), '**/e2e/**', ...tests.filter((g) => g.startsWith('!')).map(inPackage)],
    reporters: ['default'],
    outputFile: {},
  },
});
