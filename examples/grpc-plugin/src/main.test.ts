import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// The built entry point, as the README runs it (`pnpm build` first).
const MAIN = new URL('../dist/main.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('the example plugin on the command line', () => {
  it.each([
    [['--bogus'], "Unknown option '--bogus'"],
    [['--port', 'abc'], '--port must be an integer from 0 to 65535, got "abc"'],
    [['extra'], "Unexpected argument 'extra'"],
    [['--handler', 'slack'], '--handler must be one of example, webhook, got "slack"'],
  ])('%j is a usage error: exit 2 with one line naming it, not a stack trace', (args, message) => {
    const result = run(...args);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^hollowtrees-example-plugin: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(result.stderr).not.toContain('    at ');
  });

  it('a bad $PORT (no --port given) is named as the environment variable, not as --port', () => {
    const result = spawnSync(process.execPath, [MAIN], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, PORT: 'abc' } });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^hollowtrees-example-plugin: PORT \(environment\) must be an integer from 0 to 65535, got "abc"/);
  });
});
