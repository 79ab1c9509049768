import type { Backoff, Clock, PluginLogger } from '@hollowtrees/grpcplugin';
import type { CoreAnswer } from './core-client.js';
import { linkedSignal } from './linked-signal.js';
import type { WatcherMetrics } from './watcher-metrics.js';

/** An event to deliver: its `id` names it in logs; the object is sent as it is, the same at every try. */
export interface OutgoingEvent {
  readonly id: string;
  readonly type: string;
}

/** Where the queue sends: {@link CoreClient.post}, or a dry-run logger. */
export type SendEvent = (event: OutgoingEvent, signal: AbortSignal) => Promise<CoreAnswer>;

/** Options of {@link DeliveryQueue}. */
export interface DeliveryQueueOptions {
  send: SendEvent;
  /** After failed tries in a row (1 for the first). */
  backoff: Backoff;
  clock: Clock;
  logger: PluginLogger;
  metrics: WatcherMetrics;
  /** Events waiting at most; a notice beyond it is dropped and logged. Default 1 000. */
  maxPending?: number;
  /** Longest wait a `Retry-After` may ask for. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Told of each event core accepted. */
  onAccepted?: (event: OutgoingEvent) => void;
}

/** Statuses that another try may turn into a 2xx: core busy or starting, a proxy timing out, credentials being fixed. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429 || status === 401 || status === 403;
}

/**
 * Delivers events to core in order, each tried until core answers 2xx: no answer and retryable
 * statuses wait a backoff (or the `Retry-After` core sent with `queue_full` and `overloaded`) and
 * try again with the same event, so core deduplicates a re-send by its id. A 4xx that no re-send
 * can change (400 `bad_data`, 413, 415) is logged and dropped. {@link enqueue} never waits, so
 * polling goes on while a send is pending; memory is bounded by `maxPending`.
 */
export class DeliveryQueue {
  private readonly pending: OutgoingEvent[] = [];
  private readonly stop = new AbortController();
  /** Aborted by {@link hurry}: cuts the backoff being waited out short. */
  private wake = new AbortController();
  /** Set by {@link hurry}: the next failure starts the backoff over. */
  private hurried = false;
  private worker: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  private lost = 0;

  constructor(private readonly options: DeliveryQueueOptions) {}

  /** Events that will never reach core: refused by it, or dropped from a full queue. */
  get dropped(): number {
    return this.lost;
  }

  /** Events not yet accepted. */
  get size(): number {
    return this.pending.length;
  }

  /** Queues an event; false (logged, counted) when the queue is full. */
  enqueue(event: OutgoingEvent): boolean {
    const { metrics, logger, maxPending = 1_000 } = this.options;
    if (this.pending.length >= maxPending) {
      metrics.eventsDropped.inc();
      this.lost++;
      logger.error('delivery queue full: notice dropped', { event_id: event.id, type: event.type, max_pending: maxPending });
      return false;
    }
    this.pending.push(event);
    metrics.eventsPending.set(this.pending.length);
    this.worker ??= this.work().finally(() => {
      this.worker = undefined;
      for (const wake of this.idleWaiters.splice(0)) wake();
    });
    return true;
  }

  /** Resolves once every queued event is delivered or dropped, or false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (!this.worker) return true;
    const done = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = this.options.clock.sleep(timeoutMs, this.stop.signal).then(
      () => false,
      () => this.pending.length === 0,
    );
    return Promise.race([done, late]);
  }

  /**
   * Tries the event at the head again now, and starts its backoff over: a stopping watcher spends
   * its grace trying, not waiting out a backoff that grew to 30 s while core was away.
   */
  hurry(): void {
    this.hurried = true;
    this.wake.abort();
    this.wake = new AbortController();
  }

  /** Stops sending; events still queued are logged as undelivered. */
  async close(): Promise<void> {
    this.stop.abort(new Error('delivery stopped'));
    await this.worker;
    for (const event of this.pending.splice(0)) this.options.logger.error('stopped before core accepted the notice', { event_id: event.id, type: event.type });
    this.options.metrics.eventsPending.set(0);
  }

  private async work(): Promise<void> {
    const { send, backoff, clock, logger, metrics, maxRetryAfterMs = 60_000 } = this.options;
    const signal = this.stop.signal;
    // Tries of the event at the head, and its failures since the backoff (re)started.
    let tries = 0;
    let failures = 0;
    const nextBackoff = (): number => {
      if (this.hurried) failures = 0;
      this.hurried = false;
      return backoff(++failures);
    };
    while (this.pending.length > 0 && !signal.aborted) {
      const event = this.pending[0]!;
      let wait: number | undefined;
      tries++;
      try {
        const answer = await send(event, signal);
        if (answer.status >= 200 && answer.status < 300) {
          metrics.sends.inc({ outcome: 'accepted' });
          logger.info('core accepted the notice', { event_id: event.id, type: event.type, tries });
          this.options.onAccepted?.(event);
        } else if (retryable(answer.status)) {
          metrics.sends.inc({ outcome: 'retried' });
          wait = Math.min(maxRetryAfterMs, Math.max(answer.retryAfterMs ?? 0, nextBackoff()));
          logger.warn('core did not take the notice yet; retrying', { event_id: event.id, status: answer.status, reason: answer.reason, error: answer.message, retry_in_ms: Math.round(wait) });
        } else {
          metrics.sends.inc({ outcome: 'rejected' });
          this.lost++;
          logger.error('core refused the notice; it is dropped, a re-send would be refused the same way', { event_id: event.id, type: event.type, status: answer.status, reason: answer.reason, error: answer.message });
        }
      } catch (err) {
        if (signal.aborted) return;
        metrics.sends.inc({ outcome: 'failed' });
        wait = nextBackoff();
        logger.warn('no answer from core; retrying', { event_id: event.id, error: (err as Error).message, retry_in_ms: Math.round(wait) });
      }
      if (wait === undefined) {
        tries = 0;
        failures = 0;
        this.pending.shift();
        metrics.eventsPending.set(this.pending.length);
      } else {
        const cutShort = linkedSignal([signal, this.wake.signal]);
        await clock.sleep(wait, cutShort.signal).catch(() => undefined);
        cutShort.release();
      }
    }
  }
}
