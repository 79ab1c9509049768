import { GroupStates, HELD, UNAVAILABLE, type FailedRunRecord, type GroupState, type RunProgress, type StartDecision } from '../flow/group-states.js';
import type { ClaimResult, StateBackend } from './run-state-store.js';
import type { JournalProblem } from './journal-format.js';
import type { JournalRepair, StateJournal } from './state-journal.js';
import type { StateLock } from './state-lock.js';

/**
 * The `file` backend: group states in memory, every change appended to a
 * {@link StateJournal}. A run is on disk with its event before it acts, so a
 * restart (also after `kill -9`) resumes runs cut short and keeps cooldowns.
 */
export class JournalRunStateStore extends GroupStates {
  override readonly backend: StateBackend = 'file';
  override readonly resumesRuns = true;
  override readonly recordsSteps = true;
  /** The journal's number of each queued run's `running` change, until its claim: see {@link claim}. */
  private readonly startChanges = new WeakMap<RunProgress, number>();

  /**
   * @param recovered what the journal held when it was opened (see {@link StateJournal.open}).
   * @param lock the state file's lock: released after the journal closed; once lost, runs stop before their next call.
   * @param recoveredFailures the failed runs the journal held when it was opened.
   */
  constructor(
    private readonly journal: StateJournal,
    maxGroups?: number,
    override readonly recovered: readonly GroupState[] = [],
    readonly problems: readonly JournalProblem[] = [],
    private readonly lock?: StateLock,
    override readonly recoveredFailures: readonly FailedRunRecord[] = [],
  ) {
    super((change) => journal.record(change), maxGroups);
  }

  /** Every run's hold is the file's lock: once another process took it over, that one resumes the runs. */
  override holdLost(_key: string): AbortSignal | undefined {
    return this.lock?.lost;
  }

  /** Before each plugin call: a process that did not run for a while first makes sure the file is still its own. */
  override checkHold(_key: string): Promise<void> {
    return this.lock?.confirm() ?? Promise.resolve();
  }

  override tryStart(key: string, flow: string, run: RunProgress, now: number): StartDecision {
    const decision = super.tryStart(key, flow, run, now);
    if (decision === 'started') this.startChanges.set(run, this.journal.lastChange);
    return decision;
  }

  /**
   * The run is on disk with its event before its first plugin call, and marked started in the same write (a restart
   * counts it from then on). A run whose own start could not be written (a full disk) does not act: its sender was
   * refused (503) and sends the event again, which a restart before the disk had room would run a second time. A
   * failed write of the marker alone does not stop a run already on disk (new events are refused instead). The marker
   * alone costs no sync of its own (see {@link StateJournal.write}): a backlog's runs, claimed one after another, would
   * each pay one more sync than the run's end.
   */
  override async claim(key: string, run: RunProgress): Promise<ClaimResult> {
    const start = this.startChanges.get(run);
    this.startChanges.delete(run);
    this.started(key);
    const written = await this.journal.write();
    if (written || start === undefined || this.journal.holds(start)) return HELD;
    this.release(key);
    return UNAVAILABLE;
  }

  /** Kept as running on disk: the restart resumes it from the plugin it stopped at. */
  override cutShort(key: string, run: RunProgress): void {
    this.progress(key, 'running', run);
  }

  /**
   * False too once the lock is lost: what this process writes then is in a file the new holder does not read, and a
   * sender told its event was accepted would have it lost. Woken after not running for a while, it looks first.
   */
  override async commit(): Promise<boolean> {
    const written = await this.journal.flush();
    await this.lock?.confirm();
    return written && this.durable;
  }

  override get durable(): boolean {
    return this.journal.durable && !this.lock?.lost.aborted;
  }

  /**
   * Rewrites the journal from memory when its file was deleted or replaced
   * under us (says which), or fails its writes (see {@link StateJournal.needsCompaction}), and compacts it once it has grown.
   */
  async maintain(now: number): Promise<JournalRepair | undefined> {
    // A file another process took over is that one's now: a rewrite from memory here would overwrite what it wrote.
    await this.lock?.confirm();
    if (this.lock?.lost.aborted) return undefined;
    const snapshot = () => this.list(now);
    // A file that fails its writes may fail its fstat too (EBADF, ESTALE): the rewrite below replaces it either way.
    const repaired = this.journal.durable ? await this.journal.verify(snapshot) : undefined;
    if (this.journal.needsCompaction) await this.journal.compact(snapshot);
    return repaired;
  }

  /**
   * Closes the journal, then lets go of the lock, also when changes could not be saved (rejects saying how many).
   * A journal that dropped changes while the disk was full is first rewritten from memory: appending alone would
   * leave the file without them (a run that ended read as cut short, a cooldown missing) if the shutdown comes
   * after the disk is back but before {@link maintain} rewrote it. Not once the lock is lost: the rewrite would be renamed
   * over what the file's new holder wrote (close() then reports the changes not saved).
   */
  override async close(): Promise<void> {
    try {
      // Every state: a cooldown over by now is dropped when read back. A failed rewrite is what close() then reports.
      if (this.journal.missesChanges && !this.lock?.lost.aborted) await this.journal.compact(() => this.list(Number.NEGATIVE_INFINITY)).catch(() => {});
      await this.journal.close();
    } finally {
      await this.lock?.release();
    }
  }
}
