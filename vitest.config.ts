import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'bench/**/*.test.ts', 'deploy/test/**/*.test.ts', 'scripts/**/*.test.ts'],
    // The soak runs on its own (`pnpm soak`, vitest.soak.config.ts), with the machine to itself.
    exclude: [...configDefaults.exclude, '**/*.soak.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Files run in parallel, each with its own ephemeral ports. The tests spend their time
    // waiting on processes and sockets, so there are more workers than cores: on the 2-core
    // build machine 3 workers take 184 s where 2 took 273 s (4 took 151 s, with the cores ~85%
    // busy: too close to the load at which waits on real processes start to stretch).
    pool: 'forks',
    // (vitest caps a percentage at the core count, so the count is worked out here.)
    maxWorkers: Math.ceil(availableParallelism() * 1.5),
    // A worker keeps its modules from one test file to the next instead of loading the SDK,
    // grpc-js, zod and pino again for each of them: 23 s of imports instead of 105 s. The tests
    // share no module state (each builds its own servers, registries and loggers); a file that
    // mocks a module loads what it tests afresh (vi.resetModules), see receiver/auth.test.ts.
    isolate: false,
    // The JSON report lets .ci/run print one closing 'N passed, N failed' line for both runs.
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-main.json' },
  },
});
