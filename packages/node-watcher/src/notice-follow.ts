import { SETTLED_FLOWS_ATTRIBUTE, settledFlowsValue, type PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import type { AzureApprover } from './azure-approval.js';
import type { FinishedRunView } from './core-client.js';
import type { OutgoingEvent } from './delivery-queue.js';
import type { LookAgain, RunFollower, RunsEnd } from './run-follow.js';
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

/** `event` naming `settled`, the flows whose run of it succeeded, for core's flows of those names to pass it by. */
function namingSettled(event: OutgoingEvent, settled: ReadonlySet<string>): OutgoingEvent {
  if (settled.size === 0) return event;
  const named = { ...event, [SETTLED_FLOWS_ATTRIBUTE]: settledFlowsValue(settled) };
  return named;
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

  constructor(private readonly options: NoticeFollowOptions) {}

  /**
   * The event to send at this try. A re-send names, besides the flows named when it was queued, each flow core lists a
   * run of the notice succeeded in: another watcher's re-send of it (the node's old and new pod, in a DaemonSet
   * rollout). Core refusing this one meanwhile (503) would otherwise take it after that flow's cooldown, and run the
   * flow again. When core's runs cannot be read, the re-send goes as it was queued.
   */
  async toSend(event: OutgoingEvent, signal: AbortSignal): Promise<OutgoingEvent> {
    const resent = this.resent.get(event.id);
    if (!resent) return event;
    let runs: FinishedRunView[] = [];
    try {
      runs = await this.options.runsOf(event.id, signal);
    } catch (err) {
      this.options.logger.debug('cannot read core\'s flow runs of the notice before sending it again; it names the flows it named so far', { event_id: event.id, error: (err as Error).message });
    }
    const added = runs.filter((run) => run.outcome === 'succeeded' && !resent.settled.has(run.flow)).map((run) => run.flow);
    if (added.length > 0) {
      // Kept for the next tries and later re-sends, as the flows of its own sends are.
      this.resent.set(event.id, { ...resent, settled: new Set([...resent.settled, ...added]) });
      this.options.logger.info('flows ran the notice with success while its re-send waited for core; the re-send names them too, so they do not act on it again', { event_id: event.id, settled_flows: [...this.resent.get(event.id)!.settled] });
    }
    // The queued event names the flows known when it was queued; those seen at an earlier try are named again.
    return namingSettled(event, this.resent.get(event.id)!.settled);
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
    if (!this.options.resend(namingSettled(event, settled))) return 'not_resent';
    logger.warn('a flow run of the notice failed; sending the notice again, so that core runs its flow again', { ...said, settled_flows: [...settled], error: end.failed[0]?.error, resend: count + 1, max_resends: maxResends });
    return 'resent';
  }
}
