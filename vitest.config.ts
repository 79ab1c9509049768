import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'bench/**/*.test.ts', 'deploy/test/**/*.test.ts', 'scripts/**/*.test.ts'],
    // The soak runs on its own afterwards (vitest.soak.config.ts), with the machine to itself.
    exclude: [...configDefaults.exclude, '**/*.soak.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Files run in parallel, each with its own ephemeral ports. One worker per core: vitest's
    // default leaves one core out, which on a 2-core machine runs the files one at a time
    // (367 s instead of 181 s); the tests spend their time waiting on processes and sockets.
    pool: 'forks',
    maxWorkers: '100%',
    // The JSON report lets .ci/run print one closing 'N passed, N failed' line for both runs.
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-main.json' },
  },
});
