import { Counter, Gauge, type Registry } from 'prom-client';
import type { FailedRunOutcome } from './notice-follow.js';
import { CLOUDS } from './notice.js';

const SEND_OUTCOMES = ['accepted', 'retried', 'rejected', 'failed'] as const;
const FAILED_RUN_OUTCOMES: readonly FailedRunOutcome[] = ['resent', 'notice_gone', 'resend_limit', 'not_resent'];

/** The watcher's metrics, on a registry passed in (never the global one); label values are bounded sets, pre-initialised at zero. */
export class WatcherMetrics {
  /** Checks of the metadata service (AWS: reads of the spot instance action; Google Cloud: hanging GETs answered). */
  readonly polls: Counter<'cloud'>;
  /** Metadata requests that failed (no answer, an unexpected status, a body that was not what the cloud writes). */
  readonly metadataErrors: Counter<'cloud'>;
  /** Notices seen for the first time, by event type. */
  readonly notices: Counter<'type'>;
  /** Tries to send an event to core: `accepted` (2xx), `retried` (a retryable status), `rejected` (a 4xx no re-send changes), `failed` (no answer). */
  readonly sends: Counter<'outcome'>;
  /**
   * Flow runs of a notice that failed for good, by what the watcher did: `resent` (the notice sent again),
   * `notice_gone` (the metadata service no longer lists it), `resend_limit` (`--max-resends` reached), `not_resent`
   * (the queue had no room or was closed).
   */
  readonly failedRuns: Counter<'outcome'>;
  /** Events dropped because the delivery queue was full. */
  readonly eventsDropped: Counter;
  /** Events waiting for core to accept them. */
  readonly eventsPending: Gauge;

  constructor(readonly registry: Registry) {
    this.polls = new Counter({ name: 'hollowtrees_node_watcher_polls_total', help: 'Checks of the metadata service (AWS: reads of spot/instance-action; Google Cloud: hanging GETs answered).', labelNames: ['cloud'], registers: [registry] });
    this.metadataErrors = new Counter({ name: 'hollowtrees_node_watcher_metadata_errors_total', help: 'Metadata requests that failed; each is retried after a backoff.', labelNames: ['cloud'], registers: [registry] });
    this.notices = new Counter({ name: 'hollowtrees_node_watcher_notices_total', help: 'Notices seen for the first time, by CloudEvent type.', labelNames: ['type'], registers: [registry] });
    this.sends = new Counter({ name: 'hollowtrees_node_watcher_sends_total', help: 'Tries to send an event to core, by outcome.', labelNames: ['outcome'], registers: [registry] });
    this.failedRuns = new Counter({ name: 'hollowtrees_node_watcher_failed_runs_total', help: 'Flow runs of a notice that failed for good in core, by what the watcher did: resent, notice_gone, resend_limit, not_resent.', labelNames: ['outcome'], registers: [registry] });
    this.eventsDropped = new Counter({ name: 'hollowtrees_node_watcher_events_dropped_total', help: 'Notices the delivery queue had no room for, at each poll that offered one: a notice not queued is offered again by the next poll that still shows it.', registers: [registry] });
    this.eventsPending = new Gauge({ name: 'hollowtrees_node_watcher_events_pending', help: 'Events waiting for core to accept them.', registers: [registry] });
    for (const cloud of CLOUDS) {
      this.polls.inc({ cloud }, 0);
      this.metadataErrors.inc({ cloud }, 0);
    }
    for (const outcome of SEND_OUTCOMES) this.sends.inc({ outcome }, 0);
    for (const outcome of FAILED_RUN_OUTCOMES) this.failedRuns.inc({ outcome }, 0);
  }
}
