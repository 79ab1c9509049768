import type { GroupState } from '../flow/group-states.js';
import type { FinishedRun } from '../flow/recent-runs.js';
import type { SourceStatus } from '../sources/event-source.js';

const shownTime = (ms: number): string => new Date(ms).toISOString();

/**
 * A group as the status API shows it: times as RFC 3339, moved `ahead` ms onto the wall clock (the steps of it
 * since a `steadyClock` started, see `wallAheadOf`); of a run, how far it got, not its event.
 */
export function groupView(state: GroupState, ahead = 0): Record<string, unknown> {
  const { run } = state;
  const iso = (ms: number): string => shownTime(ms + ahead);
  return {
    key: state.key,
    flow: state.flow,
    phase: state.phase,
    eventId: state.eventId,
    since: iso(state.since),
    ...(state.until === undefined ? {} : { until: iso(state.until) }),
    ...(run ? { runAttempt: run.attempt, nextPlugin: run.next, restarts: run.restarts } : {}),
    ...(run?.retryAt === undefined ? {} : { retryAt: iso(run.retryAt) }),
    ...(state.replica === undefined ? {} : { replica: state.replica }),
  };
}

/** A finished run as the status API shows it: times as RFC 3339 moved `ahead` ms (see {@link groupView}), each plugin call with its duration. */
export function runView(run: FinishedRun, ahead = 0): Record<string, unknown> {
  const iso = (ms: number): string => shownTime(ms + ahead);
  return {
    ...run,
    receivedAt: iso(run.receivedAt),
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    durationMs: run.finishedAt - run.startedAt,
    calls: run.calls.map((c) => ({ ...c, startedAt: iso(c.startedAt) })),
  };
}

/** A source as the status API shows it: times as RFC 3339. */
export function sourceView(status: SourceStatus): Record<string, unknown> {
  const { lastReceiveAt, lastError, ...rest } = status;
  return {
    ...rest,
    ...(lastReceiveAt === undefined ? {} : { lastReceiveAt: shownTime(lastReceiveAt) }),
    ...(lastError ? { lastError: { at: shownTime(lastError.at), message: lastError.message } } : {}),
  };
}
