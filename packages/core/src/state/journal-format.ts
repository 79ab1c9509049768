import { z } from 'zod';
import { claimedRun, type FailedRunRecord, type GroupChange, type GroupState } from '../flow/group-states.js';
import { textStart } from '../text-start.js';

/**
 * The journal's text format: JSON lines. A compacted journal starts with a
 * header naming how many snapshot records follow it, so a file cut short at a
 * line boundary is noticed instead of silently holding less state; records
 * appended after the snapshot follow one per line.
 */
const HEADER_TAG = 'hollowtrees-run-state';
const VERSION = 6;
/**
 * Format 2 wrote runs without `at`: such a run goes on at its index. Format 3 wrote `at` without `passed`. Format 4
 * wrote no `queued` and no `started` lines: each of its running runs counts a restart, queued or not. Format 5 wrote
 * `free` where a run failed, no `failed` line: its failures are not listed after the restart.
 */
const OLDEST_READ = 2;

/** Times as the journal writes them: ms since epoch, within what `Date` can represent. */
const time = z.number().finite().min(-8.64e15).max(8.64e15);

const event = z.looseObject({ id: z.string(), source: z.string(), specversion: z.string(), type: z.string() });

/** A run's event and when it was received, as the journal and a handed-back Lease (lease-record.ts) keep them. */
export const runEvent = { event, receivedAt: time };

/** A run's place in its flow, as the journal and a Lease (lease-record.ts) keep it. */
export const runPlace = {
  attributes: z.record(z.string(), z.string()),
  next: z.number().int().min(0),
  at: z.strictObject({ plugin: z.string().min(1), occurrence: z.number().int().min(0), passed: z.array(z.string().min(1)).optional() }).optional(),
  attempt: z.number().int().min(1),
  restarts: z.number().int().min(0),
};

/** When a run waiting for its next try makes it, as the journal and a Lease (lease-record.ts) keep it. */
export const runWait = { retryAt: time.optional() };

const run = z.strictObject({
  ...runPlace,
  ...runEvent,
  ...runWait,
  queued: z.literal(true).optional(),
});

const base = { key: z.string().min(1), flow: z.string().min(1), eventId: z.string(), since: time };

const record = z.discriminatedUnion('phase', [
  // Version 1 journals wrote running records without `run`: such a run is reported interrupted.
  z.strictObject({ ...base, phase: z.literal('running'), run: run.optional() }),
  z.strictObject({ ...base, phase: z.literal('retrying'), run }),
  z.strictObject({ ...base, phase: z.literal('cooling'), until: time }),
  z.strictObject({ key: z.string().min(1), phase: z.literal('free') }),
  // The group's queued run was claimed: a restart counts it from here.
  z.strictObject({ key: z.string().min(1), phase: z.literal('started') }),
  // A run failed for good: its group is free, and the failure is listed again after the restart.
  z.strictObject({
    key: z.string().min(1),
    phase: z.literal('failed'),
    flow: z.string().min(1),
    eventId: z.string(),
    eventType: z.string(),
    error: z.string().optional(),
    receivedAt: time,
    startedAt: time,
    finishedAt: time,
  }),
]);

/**
 * Failed runs a journal keeps at most, the newest: as many as the status API lists runs. Enough for a follower that
 * looks at core's runs every few seconds to see the failure of its event after a restart; no more, so that the journal
 * of a flow failing in a loop does not grow with it.
 */
export const FAILED_RUNS_KEPT = 100;
/**
 * The start of a failed run's error and event type the journal keeps: a plugin's message may be megabytes (a stream
 * answer's status), and a flow matching `*` takes any type a sender names.
 */
export const FAILURE_TEXT_CHARS = 2_000;

/** `text` cut to {@link FAILURE_TEXT_CHARS}, marked so when cut: as the journal and a failed run's Lease keep it. */
export function failureText(text: string): string {
  return text.length > FAILURE_TEXT_CHARS ? `${textStart(text, FAILURE_TEXT_CHARS)}…` : text;
}

const header = z.strictObject({ journal: z.literal(HEADER_TAG), version: z.number().int().min(OLDEST_READ).max(VERSION), records: z.number().int().min(0) });

/**
 * A journal a later Hollowtrees wrote (its header has a higher version): this
 * one would read too little of it and, rewriting it at start, drop the rest, so
 * cooldowns and runs in progress would be forgotten after a rollback.
 */
export class JournalFromNewerVersion extends Error {
  override readonly name = 'JournalFromNewerVersion';
  constructor(readonly version: number) {
    super(`it was written by a later Hollowtrees (journal format ${version}; this one reads format ${VERSION} and earlier): start that version again, or move the file away to start without its run state`);
  }
}

/** The format version a journal header names, if the first line is one of ours with a numeric version. */
function headerVersion(json: unknown): number | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const { journal, version } = json as { journal?: unknown; version?: unknown };
  return journal === HEADER_TAG && typeof version === 'number' ? version : undefined;
}

/** A line of the journal that could not be used, by its 1-based line number. */
export interface JournalProblem {
  line: number;
  reason: string;
}

/** What a journal file holds. */
export interface JournalContents {
  /** The last state of every group that has one. */
  states: GroupState[];
  /** The last {@link FAILED_RUNS_KEPT} runs that failed for good, oldest first. */
  failures: FailedRunRecord[];
  /** Lines that were skipped, and a snapshot that was cut short. */
  problems: JournalProblem[];
}

/**
 * `change` with each of its times moved `by` ms: the journal holds wall-clock times, which a process on
 * `steadyClock` writes and reads moved by how far the wall clock was stepped since it started.
 */
export function shiftTimes<T extends GroupChange>(change: T, by: number): T {
  if (by === 0) return change;
  if (change.phase === 'failed') return { ...change, receivedAt: change.receivedAt + by, startedAt: change.startedAt + by, finishedAt: change.finishedAt + by };
  if (!('since' in change)) return change;
  const shifted: GroupState = { ...change, since: change.since + by };
  if (change.until !== undefined) shifted.until = change.until + by;
  if (change.run) {
    const { run } = change;
    shifted.run = { ...run, receivedAt: run.receivedAt + by, ...(run.retryAt === undefined ? {} : { retryAt: run.retryAt + by }) };
  }
  return shifted as T;
}

/** One journal line for a change, its times moved `by` ms ({@link shiftTimes}). */
export function formatRecord(change: GroupChange, by = 0): string {
  return JSON.stringify(shiftTimes(change, by));
}

/**
 * A compacted journal (the header, then one line per failed run kept, then one per state) in pieces of about
 * `pieceChars` characters, its times moved `by` ms ({@link shiftTimes}): a snapshot of 250,000 groups is 42 MiB of text, which
 * as one string (and its bytes) would hold that much again while it is written.
 */
export function* snapshotPieces(states: readonly GroupState[], pieceChars = 1024 * 1024, by = 0, failures: readonly FailedRunRecord[] = []): Generator<string> {
  let piece = `${JSON.stringify({ journal: HEADER_TAG, version: VERSION, records: states.length + failures.length })}\n`;
  // Not one spread array: a snapshot may hold hundreds of thousands of states. The failures first, as they happened:
  // a group that failed and ran again has its newer state after its failure, which frees the group where it is read.
  for (const records of [failures, states]) {
    for (const record of records) {
      piece += `${formatRecord(record, by)}\n`;
      if (piece.length >= pieceChars) {
        yield piece;
        piece = '';
      }
    }
  }
  yield piece;
}

function reasonOf(error: z.ZodError): string {
  const issue = error.issues[0]!;
  return `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`;
}

/**
 * Reads a journal a line at a time, so that start-up never holds the whole file
 * as one string (several times its size once split and parsed). A line that is
 * not JSON (a write cut short by kill -9), not a record of the right shape, or a
 * snapshot with fewer records than its header announced is reported as a problem
 * and skipped.
 */
export class JournalReader {
  private readonly states = new Map<string, GroupState>();
  private readonly failures = new FailedRuns();
  private readonly problems: JournalProblem[] = [];
  /** Lines taken so far, each one ended by a newline. */
  private lines = 0;
  private snapshotEnd = 0;
  private announced = 0;

  /**
   * Takes the next line, without its newline.
   * @throws JournalFromNewerVersion when a later Hollowtrees wrote the journal.
   */
  line(line: string): void {
    const number = ++this.lines;
    if (line === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.problems.push({ line: number, reason: 'not JSON (a write cut short?)' });
      return;
    }
    if (number === 1 && typeof json === 'object' && json !== null && 'journal' in json) {
      const version = headerVersion(json);
      if (version !== undefined && version > VERSION) throw new JournalFromNewerVersion(version);
      const parsed = header.safeParse(json);
      if (!parsed.success) {
        this.problems.push({ line: 1, reason: `unreadable header: ${reasonOf(parsed.error)}` });
        return;
      }
      this.announced = parsed.data.records;
      this.snapshotEnd = 1 + this.announced;
      return;
    }
    const parsed = record.safeParse(json);
    if (!parsed.success) {
      this.problems.push({ line: number, reason: `not a run-state record: ${reasonOf(parsed.error)}` });
      return;
    }
    const change = parsed.data as GroupChange;
    if (change.phase === 'free') this.states.delete(change.key);
    else if (change.phase === 'failed') {
      // In a snapshot the group's state is its latest, whatever the order (12d33fe wrote the failures after the states).
      if (number > this.snapshotEnd) this.states.delete(change.key);
      this.failures.add(change);
    } else if (change.phase === 'started') this.claimed(change.key);
    else this.states.set(change.key, change);
  }

  /** The group's run as it is once claimed, if it is running. */
  private claimed(key: string): void {
    const state = this.states.get(key);
    if (state?.phase === 'running' && state.run) this.states.set(key, { ...state, run: claimedRun(state.run) });
  }

  /**
   * What the journal holds. `torn`: the text after the last newline (a write cut
   * short), which is read as a line but does not count as written.
   */
  finish(torn: string): JournalContents {
    const complete = this.lines;
    if (torn !== '') this.line(torn);
    const present = Math.min(complete, this.snapshotEnd) - 1;
    if (this.snapshotEnd > 0 && present < this.announced) {
      this.problems.push({ line: complete + 1, reason: `the snapshot announces ${this.announced} records but the file ends after ${Math.max(0, present)}: it was cut short` });
    }
    return { states: [...this.states.values()], failures: this.failures.list(), problems: this.problems };
  }
}

/** What tells one failed run from another: a group's runs are of events received, and start and end, at different times. */
const failureIdentity = (run: FailedRunRecord): string => JSON.stringify([run.key, run.eventId, run.receivedAt, run.startedAt, run.finishedAt]);

/** The last {@link FAILED_RUNS_KEPT} failed runs, oldest first: what a journal keeps of them, read back and written. */
export class FailedRuns {
  private runs: FailedRunRecord[] = [];
  /** The {@link failureIdentity} of each run in `runs`. */
  private identities = new Set<string>();

  constructor(runs: readonly FailedRunRecord[] = []) {
    for (const run of runs) this.add(run);
  }

  /**
   * Keeps `run`, its error and event type cut to {@link FAILURE_TEXT_CHARS}; returns it as kept. A run kept already is not kept
   * twice: a write that failed after its lines landed (a sync's EIO, a full disk mid-write) appends them again.
   */
  add(run: FailedRunRecord): FailedRunRecord {
    const long = run.eventType.length > FAILURE_TEXT_CHARS || (run.error?.length ?? 0) > FAILURE_TEXT_CHARS;
    const kept = long ? { ...run, eventType: failureText(run.eventType), ...(run.error === undefined ? {} : { error: failureText(run.error) }) } : run;
    const identity = failureIdentity(kept);
    if (this.identities.has(identity)) return kept;
    this.runs.push(kept);
    this.identities.add(identity);
    // Halved in one step rather than shifted at each add: a flow failing in a loop costs no copy per failure.
    if (this.runs.length >= 2 * FAILED_RUNS_KEPT) {
      this.runs = this.runs.slice(-FAILED_RUNS_KEPT);
      this.identities = new Set(this.runs.map(failureIdentity));
    }
    return kept;
  }

  list(): FailedRunRecord[] {
    return this.runs.slice(-FAILED_RUNS_KEPT);
  }
}
