import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Why a message was deleted: the only reasons the SQS source deletes one. */
export const DELETE_REASONS = ['acted', 'not_found', 'deduplicated', 'unmatched', 'ignored', 'unprocessable'] as const;
export type DeleteReason = (typeof DELETE_REASONS)[number];
/** The SQS calls whose failures are counted, by the `action` label. */
export const SQS_ACTIONS = ['ReceiveMessage', 'ChangeMessageVisibilityBatch', 'DeleteMessageBatch'] as const;
export type SqsAction = (typeof SQS_ACTIONS)[number];

/**
 * The SQS source's metrics, by queue (its name, from the configured URL: a
 * bounded set). Declared once on the registry passed in.
 */
export class SqsMetrics {
  readonly received: Counter<'queue'>;
  readonly redelivered: Counter<'queue'>;
  readonly deleted: Counter<'queue' | 'reason'>;
  readonly left: Counter<'queue'>;
  readonly parseFailures: Counter<'queue'>;
  readonly apiErrors: Counter<'queue' | 'action'>;
  readonly inFlight: Gauge<'queue'>;
  readonly receiveToFirstCall: Histogram<'queue'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.received = new Counter({ name: 'hollowtrees_sqs_messages_received_total', help: 'Messages received from SQS, redeliveries included.', labelNames: ['queue'], registers });
    this.redelivered = new Counter({ name: 'hollowtrees_sqs_messages_redelivered_total', help: 'Messages received again (ApproximateReceiveCount above 1).', labelNames: ['queue'], registers });
    this.deleted = new Counter({ name: 'hollowtrees_sqs_messages_deleted_total', help: 'Messages deleted, by why: acted, not_found, deduplicated, unmatched, ignored, unprocessable.', labelNames: ['queue', 'reason'], registers });
    this.left = new Counter({ name: 'hollowtrees_sqs_messages_left_total', help: 'Messages left on the queue for a redelivery: a run failed, was cut short, or a flow had no room.', labelNames: ['queue'], registers });
    this.parseFailures = new Counter({ name: 'hollowtrees_sqs_messages_unprocessable_total', help: 'Messages that are not a notice Hollowtrees can read (deleted; the log says why).', labelNames: ['queue'], registers });
    this.apiErrors = new Counter({ name: 'hollowtrees_sqs_api_errors_total', help: 'SQS calls that failed after the SDK\'s retries, by action.', labelNames: ['queue', 'action'], registers });
    this.inFlight = new Gauge({ name: 'hollowtrees_sqs_messages_in_flight', help: 'Messages received and not yet deleted or left.', labelNames: ['queue'], registers });
    this.receiveToFirstCall = new Histogram({ name: 'hollowtrees_sqs_receive_to_first_plugin_call_seconds', help: 'From receiving a message to the first plugin call of a run its event started.', labelNames: ['queue'], buckets: LATENCY_BUCKETS, registers });
  }

  /** Makes a queue's series exist at zero from the start. */
  initQueue(queue: string): void {
    for (const counter of [this.received, this.redelivered, this.left, this.parseFailures]) counter.inc({ queue }, 0);
    for (const reason of DELETE_REASONS) this.deleted.inc({ queue, reason }, 0);
    // increase() cannot see a series' first sample: the first failed poll would go unseen by an alert.
    for (const action of SQS_ACTIONS) this.apiErrors.inc({ queue, action }, 0);
    this.inFlight.set({ queue }, 0);
  }
}
