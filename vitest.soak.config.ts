import { defineConfig } from 'vitest/config';

/**
 * The bounded soak (`*.soak.test.ts`), run on its own: one file at a time so it
 * has the machine to itself. `SOAK_SECONDS` shortens it for a quick local run.
 */
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.soak.test.ts'],
    testTimeout: 150_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-soak.json' },
    env: { HOLLOWTREES_SOAK: '1' },
    // Lets the soak force a GC before it reads RSS and heap.
    execArgv: ['--expose-gc'],
  },
});
