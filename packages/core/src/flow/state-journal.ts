import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { GroupState } from './group-states.js';

/** One line of the journal: a group's new state, or `free` when it has none. */
type JournalRecord = GroupState | { key: string; phase: 'free' };

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
  private flushing: Promise<void> | undefined;
  private written = 0;

  private constructor(
    private readonly path: string,
    private readonly compactAfter: number,
  ) {
    this.fd = openSync(path, 'a');
  }

  /** Opens (creating) the journal at `path` and reads back what it holds. */
  static open(path: string, options: { compactAfter?: number } = {}): { journal: StateJournal; recovered: RecoveredState } {
    mkdirSync(dirname(path), { recursive: true });
    const recovered = StateJournal.read(path);
    const journal = new StateJournal(path, options.compactAfter ?? 100_000);
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

  /** Queues a state change; written by the next flush. */
  record(record: JournalRecord): void {
    this.pending.push(JSON.stringify(record));
    if (this.pending.length === 1) setImmediate(() => void this.flush());
  }

  /** Writes and syncs everything queued so far. */
  flush(): Promise<void> {
    if (this.pending.length === 0) return this.flushing ?? Promise.resolve();
    this.flushing = (this.flushing ?? Promise.resolve()).then(() => {
      if (this.pending.length === 0) return;
      const lines = this.pending;
      this.pending = [];
      writeSync(this.fd, `${lines.join('\n')}\n`);
      fdatasyncSync(this.fd);
      this.written += lines.length;
    });
    return this.flushing;
  }

  /** True when the journal has grown enough to be worth rewriting. */
  get needsCompaction(): boolean {
    return this.written > this.compactAfter;
  }

  /** Rewrites the journal as just `states`: write a temporary file, fsync, rename over the journal. */
  compact(states: readonly GroupState[]): void {
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
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.written = states.length;
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    closeSync(this.fd);
  }
}
