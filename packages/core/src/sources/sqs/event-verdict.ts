import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { AcceptOptions, EventSink, RunSettlement } from '../event-sink.js';
import type { DeleteReason } from './sqs-metrics.js';

/**
 * What becomes of a message: deleted for a reason; left on the queue for SQS to hand out again (after its visibility
 * timeout, or at once with `now`); or, while a run of its group is in progress on another replica, kept hidden and its
 * event dispatched again later (`wait`).
 */
export type Verdict =
  | { readonly action: 'delete'; readonly reason: DeleteReason }
  | { readonly action: 'leave'; readonly why: string; readonly now?: true }
  | { readonly action: 'wait'; readonly why: string };

/** The plugins' answer for an instance or node they do not know: acting again will not help. */
const PERMANENT_CODES = new Set(['NOT_FOUND']);

/**
 * Another replica's run of the event's group is in progress: if that replica
 * dies the run is cut short, and a deleted message would be lost with it. Kept
 * hidden, the event is dispatched again until that run is known to have ended:
 * then deleted as deduplicated once it succeeded (its cooldown holds the group), or run here if it did not.
 */
const RUNNING_ELSEWHERE = (flow?: string): Verdict => ({ action: 'wait', why: `${flow ? `flow ${flow}: ` : ''}a run of its group is in progress on another replica` });

/** A run's ending as a verdict: success and "not found" end the message; anything else is tried again by a redelivery. */
function verdictOfRun(settlement: RunSettlement): Verdict {
  if (settlement.outcome === 'succeeded') return { action: 'delete', reason: 'acted' };
  if (settlement.outcome === 'deduplicated') return { action: 'delete', reason: 'deduplicated' };
  if (settlement.outcome === 'running_elsewhere') return RUNNING_ELSEWHERE(settlement.flow);
  if (settlement.outcome === 'failed' && settlement.code !== undefined && PERMANENT_CODES.has(settlement.code)) return { action: 'delete', reason: 'not_found' };
  return { action: 'leave', why: `flow ${settlement.flow}: run ${settlement.outcome}${settlement.error ? `: ${settlement.error}` : ''}` };
}

/** Deletes after which an event is done with here: a run acted on it, or its group already was. */
const SETTLED_FOR_GOOD: ReadonlySet<DeleteReason> = new Set(['acted', 'not_found', 'deduplicated']);

/** True when `verdict` settles its event (or a flow's part in it) for good: a copy handed out again needs no run. */
export const settledForGood = (verdict: Verdict): boolean => verdict.action === 'delete' && SETTLED_FOR_GOOD.has(verdict.reason);

/** Deletion reasons, strongest first: a message whose events ended differently is deleted for the first that applies. */
const PRECEDENCE: readonly DeleteReason[] = ['acted', 'not_found', 'deduplicated', 'unmatched', 'ignored', 'unprocessable'];

/**
 * One verdict for a message from those of its events (a Health notice has one per instance): any left for its
 * visibility timeout (a failed run's retry waits that long) leaves it so, else any left at once, else any waiting keeps it.
 */
export function combineVerdicts(verdicts: readonly Verdict[]): Verdict {
  const kept =
    verdicts.find((v) => v.action === 'leave' && !v.now) ?? verdicts.find((v) => v.action === 'leave') ?? verdicts.find((v) => v.action === 'wait');
  if (kept) return kept;
  const reasons = new Set(verdicts.map((v) => (v.action === 'delete' ? v.reason : undefined)));
  return { action: 'delete', reason: PRECEDENCE.find((r) => reasons.has(r)) ?? 'unmatched' };
}

/** The results the verdict of one event waits for. */
export interface EventProgress {
  /** Resolves once every run the event started has ended. */
  readonly verdict: Promise<Verdict>;
  /** When the first run called its first plugin: resolved with the verdict. */
  firstCallAt(): number | undefined;
  /** The flows whose run of the event's group is in progress on another replica: resolved with the verdict. */
  waitingIn(): ReadonlySet<string>;
  /** The flows whose run settled the event for good ({@link settledForGood}): resolved with the verdict. */
  settledIn(): ReadonlySet<string>;
  /** How many flows took the event (of those `options.flows` names, when it names some). */
  readonly matched: number;
}

/**
 * Dispatches one event and resolves with what to do with its message: delete
 * once every run it started or joined (a run of its group in progress here:
 * one resumed after a restart, or another event's, whose success makes this one
 * deduplicated) succeeded or ended on NOT_FOUND, or when no run was needed
 * (deduplicated: its group is cooling down; unmatched: no flow takes it); wait while a run of its group is in
 * progress on another replica; leave it when a run failed or was cut short, or a flow had no room (the event
 * was not accepted), so that SQS hands it out again and a later run retries. Deletes without a run wait for `commit()`, as the sink
 * contract asks; a commit that fails leaves the message. `options` go to the sink with the event.
 */
export function dispatchForVerdict(sink: EventSink, event: CloudEvent, receivedAt: number, options?: AcceptOptions): EventProgress {
  const runs: Verdict[] = [];
  let firstCallAt: number | undefined;
  const waitingIn = new Set<string>();
  const settledIn = new Set<string>();
  let expected = Infinity;
  let finish: (verdict: Verdict) => void = () => {};
  const verdict = new Promise<Verdict>((resolve) => (finish = resolve));
  const settled = (): void => {
    if (runs.length < expected) return;
    finish(combineVerdicts(runs));
  };
  const result = sink.accept(
    event,
    receivedAt,
    (settlement) => {
      if (settlement.firstCallAt !== undefined) firstCallAt = Math.min(firstCallAt ?? Infinity, settlement.firstCallAt);
      if (settlement.outcome === 'running_elsewhere') waitingIn.add(settlement.flow);
      const run = verdictOfRun(settlement);
      if (settledForGood(run)) settledIn.add(settlement.flow);
      runs.push(run);
      settled();
    },
    options,
  );
  for (const flow of result.runningElsewhereIn ?? []) waitingIn.add(flow);
  const [drop] = result.dropped;
  const joined = result.joined ?? 0;
  const elsewhere = result.runningElsewhere ?? 0;
  // The verdict of what needs no run here: a cooldown's deduplication leaves nothing to wait for.
  const atOnce: Verdict | undefined = drop
    ? { action: 'leave', why: `flow ${drop.flow} could not take it: ${drop.reason}${drop.detail ? ` (${drop.detail})` : ''}` }
    : result.matched === 0
      ? { action: 'delete', reason: 'unmatched' }
      : elsewhere > 0
        ? RUNNING_ELSEWHERE()
        : result.deduplicated > joined
          ? { action: 'delete', reason: 'deduplicated' }
          : undefined;
  if (atOnce) runs.push(atOnce);
  expected = result.started + joined + (atOnce ? 1 : 0);
  settled();
  // A run's settlement comes after its end was handed to the store (see RunListener); a deduplication's holder may not be on disk yet.
  const committed = verdict.then(async (v) =>
    v.action === 'delete' && v.reason === 'deduplicated' && !(await sink.commit()) ? ({ action: 'leave', why: 'the run state cannot be saved now' } as const) : v,
  );
  return { verdict: committed, firstCallAt: () => firstCallAt, waitingIn: () => waitingIn, settledIn: () => settledIn, matched: result.matched };
}
