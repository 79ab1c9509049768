import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { makeDirectory } from './make-directory.js';

/** Who holds a state file, as the holder wrote it next to the lock. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** When the holder took the lock, RFC 3339. */
  since: string;
}

function holderText(holder: LockHolder | undefined): string {
  const who = holder ? `pid ${holder.pid} on host ${holder.hostname} (since ${holder.since})` : 'another process';
  return `is in use by ${who}; two processes on one state file would both act on the same events`;
}

/** The state file is held by another live process. */
export class StateFileLockedError extends Error {
  override readonly name = 'StateFileLockedError';
  constructor(
    readonly file: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(`${file} ${holderText(holder)}`);
  }

  /** The message without the file name, for a caller that shows the file its own way. */
  get holderText(): string {
    return holderText(this.holder);
  }
}

/** A held lock. */
export interface StateLock {
  /**
   * Aborted once the lock is lost (its directory removed or taken over, seen by its refresh or by {@link confirm}):
   * another process may be acting on the same state, so this one must act no more.
   */
  readonly lost: AbortSignal;
  /**
   * After this process did not run for longer than a refresh interval (stopped, paused, starved), checks that no other
   * process took the file over meanwhile, aborting {@link lost} if one did. Woken, a process handles what came in (a
   * plugin's answer) before its refresh timer can see the lock taken: without this it would act once more.
   */
  confirm(): Promise<void>;
  release(): Promise<void>;
}

/**
 * The lock is a directory refreshed every UPDATE_MS and taken over once it is
 * STALE_MS old (proper-lockfile), so a holder killed with -9 on another host
 * frees it within seconds; on this host a dead holder's lock is taken once it
 * has gone unrefreshed for QUIET_MS.
 */
const STALE_MS = 10_000;
const UPDATE_MS = 2_000;

const holderPath = (file: string): string => `${file}.holder`;

/** The holder a holder file's text names; undefined for an empty or half-written one. */
function parseHolder(text: string): LockHolder | undefined {
  try {
    return JSON.parse(text) as LockHolder;
  } catch {
    return undefined;
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  return parseHolder(await readFile(holderPath(file), 'utf8').catch(() => ''));
}

function isAlive(pid: number): boolean {
  // Our own pid in the holder file is a previous life of this container or unit, not us: we hold nothing yet.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A live holder refreshes the lock every UPDATE_MS; one that has not for twice that is gone. */
const QUIET_MS = 2 * UPDATE_MS;

/**
 * Whether the lock at `lockPath` is still being refreshed. A holder on this
 * host whose pid is dead here (or is ours) may be alive in another pid
 * namespace under the same host name (containers with host networking are
 * all pid 1 on one host name): only a lock left unrefreshed says it is gone.
 * Waits until the lock is QUIET_MS old at most once.
 */
async function stillRefreshed(lockPath: string): Promise<boolean> {
  const mtimeOf = async (): Promise<number | undefined> => {
    try {
      return (await stat(lockPath)).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const before = await mtimeOf();
  if (before === undefined) return false;
  const wait = before + QUIET_MS - Date.now();
  if (wait <= 0) return false;
  // At most QUIET_MS: a lock stamped in the future (the clock was set back since) must not hold the start for as long.
  await sleep(Math.min(wait, QUIET_MS));
  return (await mtimeOf()) !== before;
}

/**
 * Takes the exclusive lock on a state file for the life of the process.
 * Throws {@link StateFileLockedError} naming the holder when a live process
 * has it. `onCompromised` hears that the lock was lost (its directory removed
 * or taken over): the caller must stop writing the file.
 */
export async function lockStateFile(file: string, onCompromised: (err: Error) => void): Promise<StateLock> {
  const lost = new AbortController();
  // Every run in flight listens to it (JournalRunStateStore.holdLost): as many as the flows' concurrency.
  setMaxListeners(0, lost.signal);
  const loseLock = (err: Error): void => {
    if (lost.signal.aborted) return;
    lost.abort(err);
    onCompromised(err);
  };
  const options = { realpath: false, stale: STALE_MS, update: UPDATE_MS, lockfilePath: `${file}.lock`, onCompromised: loseLock };
  await makeDirectory(dirname(file));
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(file, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const holder = await readHolder(file);
    if (!holder || holder.hostname !== hostname() || isAlive(holder.pid) || (await stillRefreshed(options.lockfilePath))) throw new StateFileLockedError(file, holder);
    await rm(options.lockfilePath, { recursive: true, force: true });
    release = await lockfile.lock(file, options);
  }
  const holder: LockHolder = { pid: process.pid, hostname: hostname(), since: new Date().toISOString() };
  const ours = `${JSON.stringify(holder)}\n`;
  await writeFile(holderPath(file), ours);
  const stall = new StallWatch(UPDATE_MS);
  return {
    lost: lost.signal,
    async confirm() {
      if (lost.signal.aborted || !stall.stalled()) return;
      const now = await readFile(holderPath(file), 'utf8').catch(() => '');
      if (now === ours) return stall.confirmed();
      loseLock(Object.assign(new Error(`while this process was not running, another took ${file} over: it ${holderText(parseHolder(now))}`), { code: 'ECOMPROMISED' }));
    },
    release: () => {
      stall.stop();
      // A lock taken over is not ours to remove: proper-lockfile would only say it is released already.
      return lost.signal.aborted ? Promise.resolve() : release();
    },
  };
}

/** Notices that this process did not run for longer than `intervalMs`: a tick of its own came late. */
class StallWatch {
  private last = Date.now();
  private late = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly intervalMs: number) {
    this.timer = setInterval(() => {
      const now = Date.now();
      // Kept until confirmed: the tick that sees the stall may run before the answer that would act on it.
      if (now - this.last > intervalMs) this.late = true;
      this.last = now;
    }, intervalMs / 2).unref();
  }

  /** True from a late tick (or one overdue now) until {@link confirmed}. */
  stalled(): boolean {
    return this.late || Date.now() - this.last > this.intervalMs;
  }

  confirmed(): void {
    this.late = false;
    this.last = Date.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
