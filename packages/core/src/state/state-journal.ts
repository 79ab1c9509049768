import { createReadStream } from 'node:fs';
import { copyFile, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { GroupChange, GroupState } from '../flow/group-states.js';
import { FailedRuns, formatRecord, JournalReader, shiftTimes, snapshotPieces, type JournalContents } from './journal-format.js';
import { openJournalFile, type JournalFile, type OpenJournalFile } from './journal-file.js';
import { makeDirectory } from './make-directory.js';
import { syncDirectory } from './sync-directory.js';

/** How soon a failed write is tried again. */
const RETRY_AFTER_FAILURE_MS = 1_000;

/**
 * Write failures for want of room: a rewrite to a new file needs that room too. Any other (EIO, ESTALE, EBADF)
 * may be the open file's alone, which a rewrite replaces.
 */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT']);

/** Lines kept in memory while writes fail, by default. */
const MAX_UNWRITTEN_LINES = 100_000;

/** Options for {@link StateJournal.open}; every field has a default. */
export interface StateJournalOptions {
  /** Rewrite the journal once this many records were appended since the last rewrite. Default 100,000. */
  compactAfter?: number;
  /**
   * Rewrite it also once this many bytes were appended since the last rewrite, so that a
   * journal of large events stays small enough to read back at start. Default 64 MiB.
   */
  compactAfterBytes?: number;
  /** Told of a write that failed (disk full, I/O error); the lines stay queued for the next flush. */
  onError?: (err: unknown, unwrittenLines: number) => void;
  /**
   * Lines kept in memory while writes fail. Beyond it they are dropped, and the
   * journal is durable again only once {@link StateJournal.compact} rewrote it
   * from memory. Default 100,000.
   */
  maxUnwrittenLines?: number;
  /** Told how long each batch took from its first record to durable, in ms. */
  onDurable?: (batch: { records: number; oldestWaitMs: number }) => void;
  /** Default: the real file. Tests wrap it to hold or count syncs. */
  openFile?: OpenJournalFile;
  /** Default: Date.now. */
  now?: () => number;
  /**
   * How far the wall clock is ahead of `now` (steps of it since a `steadyClock` started): added to every time
   * written, taken from every time read, so that the file holds wall-clock times, which the next process reads.
   * Default: none.
   */
  wallAhead?: () => number;
}

/** Where a journal with unreadable lines is kept as it was before its rewrite at start (the last such file only). */
export const unreadableCopyOf = (path: string): string => `${path}.unreadable`;

/**
 * Reads the journal at `path` a chunk at a time (nothing when there is no file):
 * a journal of 250,000 cooling groups, 42 MiB, read as one string and split took
 * 350 MiB at start. Linear in the file's size, also for one very long line.
 */
export async function readJournal(path: string): Promise<JournalContents> {
  const reader = new JournalReader();
  // The line being read, in the pieces read so far: only each new chunk is searched for its end, so a line of a large
  // event (a 64 MiB body limit lets one through) is read once, not searched again from its start at every read.
  let rest: string[] = [];
  try {
    for await (const chunk of createReadStream(path, { encoding: 'utf8' }) as AsyncIterable<string>) {
      let start = 0;
      for (let end = chunk.indexOf('\n'); end !== -1; end = chunk.indexOf('\n', start)) {
        rest.push(chunk.slice(start, end));
        reader.line(rest.join(''));
        rest = [];
        start = end + 1;
      }
      if (start < chunk.length) rest.push(chunk.slice(start));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { states: [], failures: [], problems: [] };
    throw err;
  }
  return reader.finish(rest.join(''));
}

/** What {@link StateJournal.open} found and did. */
export interface OpenedJournal {
  journal: StateJournal;
  recovered: JournalContents;
  /** Where the journal was kept as it was, with the lines that could not be used. */
  keptAs?: string;
  /** Why that copy could not be made (the journal was rewritten without those lines all the same). */
  notKept?: unknown;
}

/**
 * Copies the journal at `path` to {@link unreadableCopyOf} `path`, through a temporary file renamed over it once whole
 * and synced, the rename synced in its directory: copied in place, a copy that fails (a full disk) would have truncated, then removed, the one an earlier
 * start kept, the operator's only record of that start's unreadable lines. A copy that cannot be made is removed (it
 * would hold room the journal needs) and its error returned, not thrown: a disk with room for the rewrite but not for a
 * second whole journal (its last line torn by a kill -9, an OOM kill) would otherwise keep core from starting at all,
 * each restart failing the same way.
 */
async function keepUnreadable(path: string): Promise<{ keptAs: string } | { notKept: unknown }> {
  const copy = unreadableCopyOf(path);
  const tmp = `${copy}.tmp`;
  try {
    await copyFile(path, tmp);
    // Synced before the rename: renamed first, a crash could leave an empty copy in place of the earlier one.
    const handle = await open(tmp, 'r');
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(tmp, copy);
    // Before the journal is rewritten without the lines the copy keeps: a power cut must not leave the rewrite and no copy.
    await syncDirectory(dirname(path));
    return { keptAs: copy };
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    return { notKept: err };
  }
}

/** Why the journal rewrote itself from memory. */
export type JournalRepair = 'deleted' | 'replaced';

/**
 * An append-only journal of group states, so that cooldowns survive a restart
 * (also `kill -9`) and runs cut short are resumed.
 *
 * Writes are group-committed: `record()` queues a line; `flush()` resolves once
 * every line queued before it is on disk. One write + fdatasync runs at a time,
 * off the event loop; lines queued meanwhile go together in the next one, so
 * 1,000 runs finishing at once cost a few syncs, not 1,000 in a row. When the
 * journal has grown past `compactAfter` records or `compactAfterBytes` it is rewritten with only the
 * live states (write, fsync, rename: atomic).
 */
export class StateJournal {
  private pending: string[] = [];
  /** When the oldest pending line was queued. */
  private pendingSince = 0;
  /** A pending line is more than a `started` marker: a write of it must be synced before it resolves (see {@link write}). */
  private pendingMustSync = false;
  /** Lines appended and not yet synced (`started` markers, see {@link write}), and when the oldest of them was queued. */
  private unsynced = 0;
  private unsyncedSince = 0;
  /** Every write, sync, compaction and close, one after another. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The flush that takes the lines queued now, once the one running has finished. */
  private nextFlush: Promise<boolean> | undefined;
  private written = 0;
  /** Changes recorded so far, and how many of the first of them are in the file (appended, or in a rewrite). */
  private recorded = 0;
  private inFile = 0;
  /** Bytes appended since the last rewrite. */
  private appendedBytes = 0;
  private closed = false;
  private healthy = true;
  /** A failed write may have left half a line: start the next one on a fresh line. */
  private tornLine = false;
  /**
   * Changes dropped since the last rewrite (more failed to write than are kept): the file is
   * behind memory, so appending cannot make it whole; only a rewrite from memory can.
   */
  private dropped = 0;
  private syncs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Why the last write failed, for close() to say. */
  private lastError: unknown;
  private readonly now: () => number;
  /** The last runs that failed for good: every snapshot writes them again, so that they outlive the rewrite. */
  private readonly failures: FailedRuns;

  private constructor(
    readonly path: string,
    private file: JournalFile,
    private readonly options: StateJournalOptions,
    failures: JournalContents['failures'],
  ) {
    this.now = options.now ?? Date.now;
    this.failures = new FailedRuns(failures);
  }

  /**
   * Opens (creating) the journal at `path`, reads back what it holds, and
   * rewrites it as a snapshot of that. A file with lines that could not be
   * used is first copied to {@link unreadableCopyOf} `path` (`keptAs`): the
   * rewrite drops them, and the problems' line numbers are that copy's.
   * A copy that cannot be made does not stop the start (`notKept` says why).
   */
  static async open(path: string, options: StateJournalOptions = {}): Promise<OpenedJournal> {
    await makeDirectory(dirname(path));
    const read = await readJournal(path);
    const ahead = options.wallAhead?.() ?? 0;
    const recovered = { ...read, states: read.states.map((state) => shiftTimes(state, -ahead)), failures: read.failures.map((run) => shiftTimes(run, -ahead)) };
    const copy = recovered.problems.length > 0 ? await keepUnreadable(path) : {};
    const openFile = options.openFile ?? openJournalFile;
    const journal = new StateJournal(path, await openFile(path), options, recovered.failures);
    await journal.compact(() => recovered.states);
    return { journal, recovered, ...copy };
  }


  /**
   * Queues a state change; written by the next flush. Ignored once closed. A `started` marker is written by the
   * claim that makes it ({@link write}) and synced by the run's next flush: it asks for no flush of its own.
   */
  record(change: GroupChange): void {
    if (this.closed) return;
    if (change.phase === 'failed') change = this.failures.add(change);
    if (this.pending.length === 0) this.pendingSince = this.now();
    if (change.phase !== 'started' && !this.pendingMustSync) {
      this.pendingMustSync = true;
      // Nobody may ask for a flush (a cooldown ending a run does): write it soon anyway. Only while such lines wait: a
      // marker appended meanwhile is left for the run's own next write to sync, not given a sync of its own.
      setImmediate(() => {
        if (this.pendingMustSync) void this.flush();
      });
    }
    this.pending.push(formatRecord(change, this.options.wallAhead?.()));
    this.recorded++;
  }

  /** The number of the last change {@link record} queued (they count from 1), for {@link holds}. */
  get lastChange(): number {
    return this.recorded;
  }

  /** Whether the change numbered `change` ({@link lastChange}) is in the file: written as {@link write} and {@link flush} promise, or in a rewrite. */
  holds(change: number): boolean {
    return change <= this.inFile;
  }

  /**
   * Resolves once every change recorded before the call is in the file, as {@link flush} does, but syncs only when
   * one of them is more than a `started` marker. A marker alone is appended: it survives the process's crash (kill -9,
   * an OOM kill), which is what it counts, and is synced by the next flush (the run's next step or its end). A
   * power cut before then loses only the marker: the run resumes as queued, counting no restart. Never rejects.
   */
  write(): Promise<boolean> {
    if (this.nextFlush || this.pendingMustSync) return this.flush();
    return this.enqueue(() => this.writePending(false));
  }

  /**
   * Resolves once every change recorded before the call is on disk: true, or
   * false when the write failed (reported to `onError`; the lines stay queued
   * and the next flush tries again). Never rejects.
   */
  flush(): Promise<boolean> {
    // A flush that has not started yet takes every line queued until it starts.
    if (this.nextFlush) return this.nextFlush;
    const flush = this.enqueue(() => {
      this.nextFlush = undefined;
      return this.writePending(true);
    });
    this.nextFlush = flush;
    return flush;
  }

  /** True while the last write succeeded and nothing was dropped: what was recorded can be made durable. */
  get durable(): boolean {
    return this.healthy && !this.missesChanges;
  }

  /** Syncs done so far (one per group commit). */
  get syncCount(): number {
    return this.syncs;
  }

  /** True when changes were dropped since the last rewrite (the disk failed for longer than `maxUnwrittenLines`): only a rewrite from memory makes the file whole. */
  get missesChanges(): boolean {
    return this.dropped > 0;
  }

  /** The last write failed, and not for want of room. */
  private get fileFails(): boolean {
    return !this.healthy && !NO_ROOM.has((this.lastError as NodeJS.ErrnoException | undefined)?.code ?? '');
  }

  /** Changes not in the file: those queued, and those dropped since the last rewrite. */
  private get unwrittenLines(): number {
    return this.pending.length + this.dropped;
  }

  /**
   * True when the journal has grown enough to be worth rewriting, misses changes it dropped, or its open file fails
   * writes for a reason other than room: appending to it again would fail until a restart, a rewrite opens a new one.
   */
  get needsCompaction(): boolean {
    return this.missesChanges || this.fileFails || this.written > (this.options.compactAfter ?? 100_000) || this.appendedBytes > (this.options.compactAfterBytes ?? 64 * 1024 * 1024);
  }

  /**
   * Rewrites the journal as the states `snapshot()` returns when the rewrite
   * starts, and the failed runs it keeps: a temporary file, fsync, rename over the journal, fsync of the
   * directory. Rejects when the rewrite fails; the old journal then stays.
   */
  compact(snapshot: () => readonly GroupState[]): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) return;
      const states = snapshot();
      const failures = this.failures.list();
      // Changes recorded while the snapshot is written are in it only if queued before it was taken.
      const covered = this.pending.length;
      const through = this.recorded;
      // The directory too may have been deleted under us.
      await makeDirectory(dirname(this.path));
      const next = await this.writeSnapshot(states, failures);
      const previous = this.file;
      this.file = next;
      this.written = states.length + failures.length;
      this.appendedBytes = 0;
      this.tornLine = false;
      // The flush that record() scheduled for the rest is still to come.
      this.pending = this.pending.slice(covered);
      this.inFile = through;
      // The snapshot, synced, holds what the markers appended unsynced said.
      this.unsynced = 0;
      this.dropped = 0;
      this.healthy = true;
      // The new file is in use already: a close that fails (the old file's own failure, EBADF, ESTALE, EIO) fails no
      // rewrite, and the rename is synced below all the same.
      await previous.close().catch(() => {});
      await syncDirectory(dirname(this.path));
    });
  }

  /**
   * Writes `states` to a temporary file, syncs it and renames it over the journal; returns it open for appending.
   * A failure leaves the old journal in place and no temporary file: a partial snapshot would hold the very room
   * on the disk that appends need (a full disk is what usually fails a rewrite).
   */
  private async writeSnapshot(states: readonly GroupState[], failures: JournalContents['failures']): Promise<JournalFile> {
    const tmp = `${this.path}.tmp`;
    let next: JournalFile | undefined;
    try {
      const handle = await open(tmp, 'w');
      try {
        // Each writeFile goes on where the last one ended, looping until all of it is written.
        for (const piece of snapshotPieces(states, undefined, this.options.wallAhead?.(), failures)) await handle.writeFile(piece);
        await handle.sync();
      } finally {
        await handle.close();
      }
      // Opened before the rename (the handle follows the file to its new name): a failure here
      // leaves the old journal in place and in use, never appends going to a file no longer named `path`.
      next = await (this.options.openFile ?? openJournalFile)(tmp);
      await rename(tmp, this.path);
      return next;
    } catch (err) {
      await next?.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * Checks that the file at `path` is still the one being written. When it was
   * deleted or replaced (a cleanup job, a restore), every state written so far
   * would be lost at the next restart: rewrites it from `snapshot()` and says
   * which happened; undefined when all is well.
   */
  async verify(snapshot: () => readonly GroupState[]): Promise<JournalRepair | undefined> {
    // In the queue: a compaction swapping the file meanwhile would look like a replaced file, or close the one read.
    const problem = await this.enqueue(() => this.fileProblem());
    if (problem) await this.compact(snapshot);
    return problem;
  }

  /** Whether the file at `path` is still the open one. */
  private async fileProblem(): Promise<JournalRepair | undefined> {
    if (this.closed) return undefined;
    const open = await this.file.identity();
    let onDisk: { dev: number; ino: number } | undefined;
    try {
      onDisk = await stat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return onDisk === undefined || (open.nlink === 0 && onDisk.ino === open.ino) ? 'deleted' : onDisk.ino !== open.ino || onDisk.dev !== open.dev ? 'replaced' : undefined;
  }

  /**
   * Flushes and closes the file; later records are ignored.
   * @throws Error naming how many changes are lost when the last write failed
   * (disk full at shutdown): the journal on disk is behind what was done; or, when
   * only `started` markers went unsynced (a sync failed), how many runs may count no restart.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const saved = await this.flush();
    const unsaved = this.unwrittenLines;
    const unsynced = this.unsynced;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.enqueue(() => this.file.close());
    if (!saved) {
      const cause = this.lastError instanceof Error ? this.lastError.message : String(this.lastError);
      // Not the path: it may have come from ${VAR}, and the log line says which store this is. Only `started` markers
      // left unsynced (a sync failed, every change written): they count restarts, no state of a run or cooldown.
      const what =
        unsaved === 0 && unsynced > 0
          ? `${unsynced} run start mark${unsynced === 1 ? '' : 's'} could not be synced to the journal before closing (${cause}): ` +
            `after a power cut, ${unsynced === 1 ? 'that run counts' : 'those runs count'} no restart; no run state is lost`
          : `${unsaved} run-state change${unsaved === 1 ? '' : 's'} could not be written to the journal before closing (${cause}): ` +
            'after the restart, runs that ended since may run again and their cooldowns are missing';
      throw new Error(what, { cause: this.lastError });
    }
  }

  private enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Appends the pending lines; syncs them, and those appended unsynced before, when `sync` or a pending line must be. */
  private async writePending(sync: boolean): Promise<boolean> {
    if (this.missesChanges) {
      // Appended to a file that misses changes, they would not make it whole: the rewrite from memory takes them.
      this.dropped += this.pending.length;
      this.pending = [];
      this.pendingMustSync = false;
      return false;
    }
    const mustSync = sync || this.pendingMustSync;
    if (this.closed || (this.pending.length === 0 && (!mustSync || this.unsynced === 0))) return this.healthy;
    const lines = this.pending;
    const through = this.recorded;
    const since = this.pendingSince;
    this.pending = [];
    this.pendingMustSync = false;
    try {
      if (lines.length > 0) {
        const text = `${this.tornLine ? '\n' : ''}${lines.join('\n')}\n`;
        await this.file.append(text);
        this.written += lines.length;
        this.appendedBytes += Buffer.byteLength(text);
        this.tornLine = false;
      }
      if (!mustSync) {
        if (this.unsynced === 0) this.unsyncedSince = since;
        this.unsynced += lines.length;
        this.healthy = true;
        this.inFile = through;
        return true;
      }
      await this.file.sync();
      this.syncs++;
      this.healthy = true;
      const oldest = this.unsynced > 0 ? Math.min(this.unsyncedSince, lines.length > 0 ? since : Infinity) : since;
      this.options.onDurable?.({ records: lines.length + this.unsynced, oldestWaitMs: this.now() - oldest });
      this.unsynced = 0;
      this.inFile = through;
      return true;
    } catch (err) {
      this.tornLine = true;
      this.healthy = false;
      this.lastError = err;
      // Keep the lines (newest last) so state catches up once the disk recovers; bounded, so a dead disk cannot eat memory.
      // Beyond the bound all are dropped: the file then needs a rewrite from memory, which takes every change.
      const kept = [...lines, ...this.pending];
      if (kept.length > (this.options.maxUnwrittenLines ?? MAX_UNWRITTEN_LINES)) this.dropped += kept.length;
      this.pending = this.missesChanges ? [] : kept;
      this.pendingSince = since;
      this.pendingMustSync ||= mustSync && this.pending.length > 0;
      this.options.onError?.(err, this.unwrittenLines);
      // Try again without waiting for the next record, so readiness comes back once the disk does.
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        void this.flush();
      }, RETRY_AFTER_FAILURE_MS).unref();
      return false;
    }
  }
}
