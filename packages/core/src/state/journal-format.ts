import { z } from 'zod';
import type { GroupChange, GroupState } from '../flow/group-states.js';

/**
 * The journal's text format: JSON lines. A compacted journal starts with a
 * header naming how many snapshot records follow it, so a file cut short at a
 * line boundary is noticed instead of silently holding less state; records
 * appended after the snapshot follow one per line.
 */
const HEADER_TAG = 'hollowtrees-run-state';
const VERSION = 2;

/** Times as the journal writes them: ms since epoch, within what `Date` can represent. */
const time = z.number().finite().min(-8.64e15).max(8.64e15);

const event = z.looseObject({ id: z.string(), source: z.string(), specversion: z.string(), type: z.string() });

const run = z.strictObject({
  event,
  attributes: z.record(z.string(), z.string()),
  receivedAt: time,
  next: z.number().int().min(0),
  attempt: z.number().int().min(1),
  retryAt: time.optional(),
  restarts: z.number().int().min(0),
});

const base = { key: z.string().min(1), flow: z.string().min(1), eventId: z.string(), since: time };

const record = z.discriminatedUnion('phase', [
  // Version 1 journals wrote running records without `run`: such a run is reported interrupted.
  z.strictObject({ ...base, phase: z.literal('running'), run: run.optional() }),
  z.strictObject({ ...base, phase: z.literal('retrying'), run }),
  z.strictObject({ ...base, phase: z.literal('cooling'), until: time }),
  z.strictObject({ key: z.string().min(1), phase: z.literal('free') }),
]);

const header = z.strictObject({ journal: z.literal(HEADER_TAG), version: z.literal(VERSION), records: z.number().int().min(0) });

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
  /** Lines that were skipped, and a snapshot that was cut short. */
  problems: JournalProblem[];
}

/** One journal line for a change. */
export function formatRecord(change: GroupChange): string {
  return JSON.stringify(change);
}

/** A compacted journal: the header, then one line per state. */
export function formatSnapshot(states: readonly GroupState[]): string {
  const lines = [JSON.stringify({ journal: HEADER_TAG, version: VERSION, records: states.length }), ...states.map(formatRecord)];
  return `${lines.join('\n')}\n`;
}

function reasonOf(error: z.ZodError): string {
  const issue = error.issues[0]!;
  return `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`;
}

/**
 * Reads journal text. A line that is not JSON (a write cut short by kill -9),
 * not a record of the right shape, or a snapshot with fewer records than its
 * header announced is reported as a problem and skipped.
 * @throws JournalFromNewerVersion when a later Hollowtrees wrote the journal.
 */
export function parseJournal(text: string): JournalContents {
  const states = new Map<string, GroupState>();
  const problems: JournalProblem[] = [];
  const lines = text.split('\n');
  let snapshotEnd = 0;
  let announced = 0;
  lines.forEach((line, i) => {
    if (line === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      problems.push({ line: i + 1, reason: 'not JSON (a write cut short?)' });
      return;
    }
    if (i === 0 && typeof json === 'object' && json !== null && 'journal' in json) {
      const version = headerVersion(json);
      if (version !== undefined && version > VERSION) throw new JournalFromNewerVersion(version);
      const parsed = header.safeParse(json);
      if (!parsed.success) {
        problems.push({ line: 1, reason: `unreadable header: ${reasonOf(parsed.error)}` });
        return;
      }
      announced = parsed.data.records;
      snapshotEnd = 1 + announced;
      return;
    }
    const parsed = record.safeParse(json);
    if (!parsed.success) {
      problems.push({ line: i + 1, reason: `not a run-state record: ${reasonOf(parsed.error)}` });
      return;
    }
    const change = parsed.data as GroupChange;
    if (change.phase === 'free') states.delete(change.key);
    else states.set(change.key, change);
  });
  // The last element after the final newline is '' and not a line.
  const present = Math.min(lines.length - 1, snapshotEnd) - 1;
  if (snapshotEnd > 0 && present < announced) {
    problems.push({ line: lines.length, reason: `the snapshot announces ${announced} records but the file ends after ${Math.max(0, present)}: it was cut short` });
  }
  return { states: [...states.values()], problems };
}
