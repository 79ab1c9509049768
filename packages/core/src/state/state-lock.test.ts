import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { lockStateFile, StateFileLockedError } from './state-lock.js';

/** The built lock, as another hollowtrees process takes it. */
const LOCK_MODULE = new URL('../../dist/state/state-lock.js', import.meta.url).href;

/** Another process that takes the lock on `file` and holds it until killed. */
async function holdInAnotherProcess(file: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `const { lockStateFile } = await import(${JSON.stringify(LOCK_MODULE)}); await lockStateFile(${JSON.stringify(file)}, () => {}); console.log('held'); setInterval(() => {}, 60_000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  expect(line.toString()).toBe('held\n');
  return child;
}

describe('lockStateFile', () => {
  it('refuses a lock still refreshed by its holder, also when the holder file names our own pid (same host name and pid in another pid namespace)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hollowtrees-lock-')), 'runs.jsonl');
    const holder = await holdInAnotherProcess(file);
    try {
      // Two containers with host networking: one host name, both pid 1. As the other sees itself:
      writeFileSync(`${file}.holder`, `${JSON.stringify({ pid: process.pid, hostname: hostname(), since: new Date().toISOString() })}\n`);
      await expect(lockStateFile(file, () => {})).rejects.toBeInstanceOf(StateFileLockedError);
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    // Its holder gone (kill -9), the lock is taken: a restart is not locked out.
    const lock = await lockStateFile(file, () => {});
    await lock.release();
  });

  it('a process that did not run for longer than a refresh (stopped, paused) finds out before acting that another took the file over; one that ran on checks nothing', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hollowtrees-lock-')), 'runs.jsonl');
    const heard: Error[] = [];
    const lock = await lockStateFile(file, (err) => heard.push(err));
    try {
      // Another process took the lock over and named itself, as one does after the lock went stale.
      writeFileSync(`${file}.holder`, `${JSON.stringify({ pid: 1, hostname: 'other-host', since: new Date().toISOString() })}\n`);
      await lock.confirm();
      expect(lock.lost.aborted).toBe(false);
      // This process stands still for longer than a refresh interval (2 s), as under SIGSTOP.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_500);
      await lock.confirm();
      expect(lock.lost.aborted).toBe(true);
      expect(heard.map((e) => e.message)).toEqual([expect.stringContaining('is in use by pid 1 on host other-host')]);
    } finally {
      await lock.release();
    }
  });
});
