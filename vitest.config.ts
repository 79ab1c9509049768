import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'bench/**/*.test.ts', 'deploy/test/**/*.test.ts'],
    // The soak runs on its own afterwards (vitest.soak.config.ts), with the machine to itself.
    exclude: [...configDefaults.exclude, '**/*.soak.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Files run in parallel, each with its own ephemeral ports.
    pool: 'forks',
    // The JSON report lets .ci/run print one closing 'N passed, N failed' line for both runs.
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-main.json' },
  },
});
