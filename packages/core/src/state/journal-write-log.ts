import type { Logger } from 'pino';

/** Least time between two lines of one outage: the journal tries again every second, and each run's step tries too. */
const FAILING_LINE_INTERVAL_MS = 60_000;

/**
 * The log of the journal's write failures: one `error` line when writes start failing (a full disk, EIO, a
 * read-only remount), then one a minute while they go on, saying how many failed since it began; and one line
 * when a write succeeds again. Logged at each failed write, a disk full for an hour wrote thousands of lines,
 * and none said when it was over.
 */
export class JournalWriteLog {
  /** When the failing writes began; undefined while writes succeed. */
  private failingSince: number | undefined;
  private failedWrites = 0;
  private lastLine = Number.NEGATIVE_INFINITY;

  /**
   * @param fields what names the journal in each line (its file, as the configuration shows it).
   */
  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly fields: Record<string, unknown>,
  ) {}

  /** A write failed; `unwrittenLines` changes wait in memory for the next one. */
  failed(err: unknown, unwrittenLines: number): void {
    const now = this.now();
    this.failingSince ??= now;
    this.failedWrites++;
    if (now - this.lastLine < FAILING_LINE_INTERVAL_MS) return;
    this.lastLine = now;
    this.logger.error(
      { err, ...this.fields, unwrittenLines, failedWrites: this.failedWrites, failingForMs: now - this.failingSince },
      'could not write run state; runs go on, new events get 503 until the journal can write again',
    );
  }

  /** What was recorded is on disk (a write succeeded, or the journal was rewritten from memory). */
  written(): void {
    if (this.failingSince === undefined) return;
    this.logger.info({ ...this.fields, failedWrites: this.failedWrites, failedForMs: this.now() - this.failingSince }, 'run state can be written again: the changes kept meanwhile are on disk, and events are taken again');
    this.failingSince = undefined;
    this.failedWrites = 0;
    this.lastLine = Number.NEGATIVE_INFINITY;
  }
}
