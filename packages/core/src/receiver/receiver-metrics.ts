import { Counter, type Registry } from 'prom-client';
import { REJECT_REASONS } from './http-error.js';
import { RECEIVED_SERIES } from './intake.js';

/** The receiver's metrics, registered on the registry passed in; `/metrics` serves that registry. */
export class ReceiverMetrics {
  readonly eventsReceived: Counter<'source' | 'type'>;
  readonly requestsRejected: Counter<'reason'>;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.eventsReceived = new Counter({ name: 'hollowtrees_events_received_total', help: 'Events received and valid: every event of a valid batch, and the valid alerts of a batch answered 400 for the others (including batches answered 503 queue_full after parsing; a batch no flow has room for is refused before it is parsed, and not counted), by receiver path (the CloudEvents path by mode) and type family (the alert name as *; a CloudEvent type as *).', labelNames: ['source', 'type'], registers });
    this.requestsRejected = new Counter({ name: 'hollowtrees_requests_rejected_total', help: 'Receiver requests answered with an error, by reason.', labelNames: ['reason'], registers });
    // Every series at 0 from the start: increase() and rate() cannot see a series' first sample, so a first 401 or 503 would go unseen.
    for (const reason of REJECT_REASONS) this.requestsRejected.inc({ reason }, 0);
    for (const labels of RECEIVED_SERIES) this.eventsReceived.inc(labels, 0);
  }
}
