import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// The built entry, as a bin imports it (`pnpm test` builds first).
const WITHOUT_GRPC = new URL('../dist/without-grpc.js', import.meta.url).href;

/** Runs a bin whose `run` is `runBody` (an async function body) and whose parse accepts anything but `--bad`; `node -e` puts the arguments from argv[1]. */
function bin(runBody: string, ...args: string[]) {
  const script = `import { runBin, StartFailure, UsageError } from ${JSON.stringify(WITHOUT_GRPC)};
void runBin({ name: 'demo', usage: 'Usage: demo', moduleUrl: ${JSON.stringify(WITHOUT_GRPC)},
  parse: (argv) => { if (argv.includes('--bad')) throw new UsageError('--bad is bad'); return argv.includes('--help') ? { kind: 'help' } : { kind: 'go' }; },
  run: async () => { ${runBody} } }, process.argv.slice(1));`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { encoding: 'utf8', timeout: 10_000 });
}

describe('runBin', () => {
  it('prints the help to stdout with exit 0, and a usage error as two lines on stderr with exit 2', () => {
    expect(bin('return 0;', '--help')).toMatchObject({ status: 0, stdout: 'Usage: demo\n', stderr: '' });
    expect(bin('return 0;', '--bad')).toMatchObject({ status: 2, stdout: '', stderr: "demo: --bad is bad\nRun 'demo --help' for usage.\n" });
  });

  it('says a StartFailure without a stack, with its exit code; a bug with its stack, exit 1', () => {
    expect(bin("throw new StartFailure('no region: pass --region', 2);")).toMatchObject({ status: 2, stderr: 'demo: no region: pass --region\n' });
    const bug = bin("throw new TypeError('boom');");
    expect(bug.status).toBe(1);
    expect(bug.stderr).toMatch(/^demo: TypeError: boom\n\s+at /);
  });

  it('exits with the code run resolves with, even while a timer would hold the process', () => {
    expect(bin('setInterval(() => {}, 1000); return 3;')).toMatchObject({ status: 3, stderr: '' });
  });
});
