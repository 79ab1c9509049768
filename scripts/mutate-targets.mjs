// @ts-check
/**
 * What one run mutates, and the tests that must kill its mutants: the module's
 * own, so a score says what those tests prove (and a mutant of a module-level
 * constant does not rerun the whole suite). Globs are relative to packages/<package>,
 * whose tsconfig the type checker uses; `!` leaves files out.
 * @typedef {{ package: string; mutate: string[]; tests: string[] }} MutateSpec
 */

/** @type {Record<string, MutateSpec>} The decision code worth mutating, by module. */
export const targets = {
  // The generated protobuf code (src/gen) is ts-proto's, tested by ts-proto; index.ts only re-exports.
  sdk: {
    package: 'grpcplugin',
    mutate: ['src/**/*.ts', '!src/gen/**', '!src/index.ts'],
    // The 256-call load test misses its 1 s deadlines on a machine busy with Stryker and
    // "kills" mutants that change nothing; serve.test.ts checks the window it guards directly.
    tests: ['src/**/*.test.ts', '!src/flow-control.test.ts'],
  },
  'core-flow': { package: 'core', mutate: ['src/flow/**/*.ts'], tests: ['src/flow/**/*.test.ts'] },
  'core-receiver': { package: 'core', mutate: ['src/receiver/**/*.ts'], tests: ['src/receiver/**/*.test.ts'] },
  'core-config': { package: 'core', mutate: ['src/config/**/*.ts'], tests: ['src/config/**/*.test.ts'] },
  // The plugins' decisions; their CLIs and client factories are wiring, exercised by the e2e tests.
  'plugin-aws-spot': {
    package: 'plugin-aws-spot',
    mutate: ['src/**/*.ts', '!src/cli*.ts', '!src/index.ts', '!src/aws-clients.ts'],
    tests: ['src/**/*.test.ts'],
  },
  'plugin-k8s-drain': {
    package: 'plugin-k8s-drain',
    mutate: ['src/**/*.ts', '!src/cli*.ts', '!src/index.ts', '!src/kube-config.ts'],
    tests: ['src/**/*.test.ts'],
  },
};
