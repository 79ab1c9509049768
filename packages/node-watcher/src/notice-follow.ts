import { SETTLED_FLOWS_ATTRIBUTE, settledFlowsValue, type PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import type { AzureApprover } from './azure-approval.js';
import type { FinishedRunView } from './core-client.js';
import type { OutgoingEvent } from './delivery-queue.js';
import { linkedSignal } from './linked-signal.js';
import { finishedAt, type LookAgain, type RunFollower, type RunsEnd } from './run-follow.js';
import type { WatcherMetrics } from './watcher-metrics.js';

/** The default of `--max-resends`: a notice gives 30 s to 2 minutes, room for a few runs, not for a run failing in a loop. */
export const DEFAULT_MAX_RESENDS = 3;

/** Options of {@link NoticeFollow}. */
export interface NoticeFollowOptions {
  follower: RunFollower;
  /** Core's finished runs of one event (the follower's reads): what a re-send looks at before each try. */
  runsOf(eventId: string, signal: AbortSignal): Promise<FinishedRunView[]>;
  /** Whether the metadata service still lists the notice of this event. */
  listed(eventId: string): boolean;
  /** Queues the event for core again; false when the delivery queue had no room or was closed (logged there). */
  resend(event: OutgoingEvent): boolean;
  /** Re-sends of one notice at most; 0 re-sends none. */
  maxResends: number;
  /** `--azure-approve`, told how each event's runs ended. */
  approver?: AzureApprover;
  logger: PluginLogger;
  metrics: WatcherMetrics;
}

/** The longest a re-send's look at core's runs holds the delivery queue, whose other notices wait meanwhile. */
const RESEND_READ_TIMEOUT_MS = 2_000;

/** A copy of `event` naming `settled`, the flows whose run of it succeeded, for core's flows of those names to pass it by. */
function namingSettled(event: OutgoingEvent, settled: ReadonlySet<string>): OutgoingEvent {
  if (settled.size === 0) return { ...event };
  const named = { ...event, [SETTLED_FLOWS_ATTRIBUTE]: settledFlowsValue(settled) };
  return named;
}

/** A re-send in the delivery queue: when the failed run it follows ended (core's clock, ms), the flows it names, and whether it was tried. */
interface QueuedResend {
  readonly after: number;
  settled: ReadonlySet<string>;
  tried: boolean;
}

/** What became of a notice whose run failed, as `hollowtrees_node_watcher_failed_runs_total` counts it. */
export type FailedRunOutcome = 'resent' | 'notice_gone' | 'resend_limit' | 'not_resent';

/**
 * Follows the runs of every notice core accepted (one {@link RunFollower} for all its uses): tells
 * the Azure approver how they ended, and sends the notice again when a run of it failed for good
 * while the metadata service still lists it, so core runs the flow again (core frees a failed
 * group: the re-send starts a new run), as Prometheus re-sending a firing alert does. Never after
 * a run that is at work or succeeded: only a failure core reports is re-sent. The re-send names the
 * flows whose run of the notice succeeded ({@link SETTLED_FLOWS_ATTRIBUTE}): core's flows of those
 * names pass it by, whatever became of their cooldowns (over, none, or over by the time core takes
 * the re-send: core refusing it for a while, or restarting). At most `maxResends` times per notice.
 */
export class NoticeFollow {
  /**
   * Re-sends so far, when the last failed run ended, and the flows whose run of it succeeded (at any send), of each
   * notice re-sent and not yet settled.
   */
  private readonly resent = new Map<string, { count: number; after: number; settled: ReadonlySet<string> }>();
  /** The re-sends this follow queued, by the object the queue holds: only they are looked at again before a try. */
  private readonly queued = new WeakMap<OutgoingEvent, QueuedResend>();

  constructor(private readonly options: NoticeFollowOptions) {}

  /**
   * The event to send at this try. A re-send this follow queued names, from its second try on, besides the flows it
   * named when queued, each flow core lists a run of the notice succeeded in after the failure it follows: another
   * watcher's re-send of it (the node's old and new pod, in a DaemonSet rollout). Core refusing this one meanwhile (503)
   * would otherwise take it after that flow's cooldown, and run the flow again. A read that fails, or takes more than
   * {@link RESEND_READ_TIMEOUT_MS}, leaves the flows named so far. Any other event is sent as it is.
   */
  async toSend(event: OutgoingEvent, signal: AbortSignal): Promise<OutgoingEvent> {
    const resend = this.queued.get(event);
    if (!resend) return event;
    // Its first try follows the look that found the failure: nothing new to read yet.
    const added = resend.tried ? await this.succeededSince(event.id, resend, signal) : [];
    resend.tried = true;
    if (added.length > 0) {
      resend.settled = new Set([...resend.settled, ...added]);
      // Named by the notice's later re-sends too, as the flows of its own sends are.
      const notice = this.resent.get(event.id);
      if (notice) this.resent.set(event.id, { ...notice, settled: new Set([...notice.settled, ...added]) });
      this.options.logger.info('flows ran the notice with success while its re-send waited for core; the re-send names them too, so they do not act on it again', { event_id: event.id, settled_flows: [...resend.settled] });
    }
    // The queue holds the event as it was queued: the flows an earlier try added are named again.
    return namingSettled(event, resend.settled);
  }

  /** The flows `resend` does not name yet that core lists a run of the notice succeeded in after its failure; none when they cannot be read. */
  private async succeededSince(eventId: string, resend: QueuedResend, signal: AbortSignal): Promise<string[]> {
    const bounded = linkedSignal([signal, AbortSignal.timeout(RESEND_READ_TIMEOUT_MS)]);
    try {
      const runs = await this.options.runsOf(eventId, bounded.signal);
      const succeeded = runs.filter((run) => run.outcome === 'succeeded' && !resend.settled.has(run.flow) && finishedAt(run) > resend.after);
      return [...new Set(succeeded.map((run) => run.flow))];
    } catch (err) {
      this.options.logger.debug('cannot read core\'s flow runs of the notice before sending it again; it names the flows it named so far', { event_id: eventId, error: (err as Error).message });
      return [];
    } finally {
      bounded.release();
    }
  }

  /** Follows the runs of an event core just accepted (a first send or a re-send). */
  accepted(event: OutgoingEvent): void {
    this.options.follower.track(event.id, (end, signal) => this.ended(event, end, signal), this.resent.get(event.id)?.after);
  }

  private async ended(event: OutgoingEvent, end: RunsEnd, signal: AbortSignal): Promise<LookAgain | undefined> {
    const { approver, logger } = this.options;
    const again = await approver?.ended(event.id, end, signal);
    if (again) return again;
    // Said once (the approver says it in its own words): a failure after this goes unseen, and is not re-sent.
    if (!approver && end.kind === 'timed_out') logger.warn('stopped following the flow runs of the notice: they did not end in time; a failure after this is not sent again', { event_id: event.id, waited_ms: end.waitedMs });
    if (!approver && end.kind === 'too_many_groups') logger.warn('not following the flow runs of the notice: core holds too many groups to find the flows running it; a failure is not sent again', { event_id: event.id });
    if (end.kind === 'failed' && this.options.maxResends > 0) {
      const outcome = this.afterFailure(event, end);
      this.options.metrics.failedRuns.inc({ outcome });
      if (outcome === 'resent') return undefined;
    }
    this.resent.delete(event.id);
    return undefined;
  }

  /** What became of the failed run. */
  private afterFailure(event: OutgoingEvent, end: Extract<RunsEnd, { kind: 'failed' }>): FailedRunOutcome {
    const { logger, maxResends } = this.options;
    const said = { event_id: event.id, type: event.type, failed_flows: end.failed.map((r) => r.flow) };
    if (!this.options.listed(event.id)) {
      logger.warn('a flow run of the notice failed; not sending it again: the metadata service no longer lists it', said);
      return 'notice_gone';
    }
    const count = this.resent.get(event.id)?.count ?? 0;
    if (count >= maxResends) {
      logger.error('a flow run of the notice failed again; not sending it again: it was re-sent --max-resends times already', { ...said, resends: count, max_resends: maxResends });
      return 'resend_limit';
    }
    const settled = new Set([...(this.resent.get(event.id)?.settled ?? []), ...end.succeeded]);
    this.resent.set(event.id, { count: count + 1, after: end.after, settled });
    const resend = namingSettled(event, settled);
    this.queued.set(resend, { after: end.after, settled, tried: false });
    if (!this.options.resend(resend)) return 'not_resent';
    logger.warn('a flow run of the notice failed; sending the notice again, so that core runs its flow again', { ...said, settled_flows: [...settled], error: end.failed[0]?.error, resend: count + 1, max_resends: maxResends });
    return 'resent';
  }
}
