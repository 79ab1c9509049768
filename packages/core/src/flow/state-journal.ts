import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { GroupState } from './group-states.js';

/** One line of the journal: a group's new state, or `free` when it has none. */
type JournalRecord = GroupState | { key: string; phase: 'free' };

/** Lines kept in memory while writes fail. */
const MAX_UNWRITTEN_LINES = 100_000;

/** What the journal held at start. */
export interface RecoveredState {
  /** Groups cooling down or running when the process stopped. */
  states: GroupState[];
  /** Lines that could not be read (a write cut short by kill -9). */
  skippedLines: number;
}

/**
 * An append-only journal of group states, so that cooldowns survive a restart
 * (also `kill -9`) and runs cut short are seen as interrupted.
 *
 * Records are written in batches: `record()` queues, `flush()` writes the batch
 * and fdatasyncs it once. A run awaits the flush of its `running` record before
 * calling the first plugin, so no plugin is ever called for a run the journal
 * does not know about. When the journal grows past `compactAfter` records it is
 * rewritten with only the live states (write, fsync, rename: atomic).
 */
export class StateJournal {
  private fd: number;
  private pending: string[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private written = 0;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly compactAfter: number,
    private readonly onError: (err: unknown, unwrittenLines: number) => void,
  ) {
    this.fd = openSync(path, 'a');
  }

  /**
   * Opens (creating) the journal at `path` and reads back what it holds.
   * `onError` hears of a write that failed (disk full, I/O error): the lines stay
   * queued for the next flush, and runs go on, since acting matters more than
   * remembering that we did.
   */
  static open(
    path: string,
    options: { compactAfter?: number; onError?: (err: unknown, unwrittenLines: number) => void } = {},
  ): { journal: StateJournal; recovered: RecoveredState } {
    mkdirSync(dirname(path), { recursive: true });
    const recovered = StateJournal.read(path);
    const journal = new StateJournal(path, options.compactAfter ?? 100_000, options.onError ?? (() => {}));
    journal.compact(recovered.states);
    return { journal, recovered };
  }

  private static read(path: string): RecoveredState {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { states: [], skippedLines: 0 };
      throw err;
    }
    const states = new Map<string, GroupState>();
    let skippedLines = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let record: JournalRecord;
      try {
        record = JSON.parse(line) as JournalRecord;
      } catch {
        skippedLines++;
        continue;
      }
      if (record.phase === 'free') states.delete(record.key);
      else states.set(record.key, record);
    }
    return { states: [...states.values()], skippedLines };
  }

  /** Queues a state change; written by the next flush. Ignored once closed. */
  record(record: JournalRecord): void {
    if (this.closed) return;
    this.pending.push(JSON.stringify(record));
    if (this.pending.length === 1) setImmediate(() => void this.flush());
  }

  /** Writes and syncs everything queued so far. Never rejects: a failed write is reported to `onError` and retried by the next flush. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => {
      if (this.pending.length === 0 || this.closed) return;
      const lines = this.pending;
      this.pending = [];
      try {
        writeSync(this.fd, `${lines.join('\n')}\n`);
        fdatasyncSync(this.fd);
        this.written += lines.length;
      } catch (err) {
        // Keep the lines (newest last) so state catches up once the disk recovers; bounded, so a dead disk cannot eat memory.
        this.pending = [...lines, ...this.pending].slice(-MAX_UNWRITTEN_LINES);
        this.onError(err, this.pending.length);
      }
    });
    return this.flushing;
  }

  /** True when the journal has grown enough to be worth rewriting. */
  get needsCompaction(): boolean {
    return this.written > this.compactAfter;
  }

  /** Rewrites the journal as just `states`: write a temporary file, fsync, rename over the journal. */
  compact(states: readonly GroupState[]): void {
    if (this.closed) return;
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      const text = states.map((s) => JSON.stringify(s)).join('\n');
      if (text) writeSync(fd, `${text}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    // Open the new file before letting go of the old one, so `fd` is never a closed descriptor.
    const appendFd = openSync(this.path, 'a');
    closeSync(this.fd);
    this.fd = appendFd;
    this.written = states.length;
    this.pending = []; // the snapshot already holds every queued change
  }

  /** Flushes and closes the file; later records are ignored. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    closeSync(this.fd);
  }
}
