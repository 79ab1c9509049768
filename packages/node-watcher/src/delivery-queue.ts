import type { Backoff, Clock, PluginLogger } from '@hollowtrees/grpcplugin';
import type { CoreAnswer } from './core-client.js';
import { linkedSignal } from './linked-signal.js';
import type { WatcherMetrics } from './watcher-metrics.js';

/** Said of an event the queue stopped before core accepted it. */
const UNDELIVERED = 'stopped before core accepted the notice';

/** An event to deliver: its `id` names it in logs; `send` gets the same object at every try (a re-send's: see `NoticeFollow.toSend`). */
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
  /** Longest `Retry-After` taken from an answer; the jittered backoff comes on top. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Told of each event core accepted. */
  onAccepted?: (event: OutgoingEvent) => void;
}

/**
 * Answers that another try may turn into a 2xx: core busy or starting, a proxy timing out,
 * credentials being fixed, a route to core being fixed (core answers its events path with no 404:
 * a 404 is an ingress or proxy that has no route to it yet, or a default backend; core never
 * redirects either: a 3xx is an ingress sending `http://` to `https://`, or a route being moved),
 * and any other 4xx core did not write: core names its reason (`errorType`) in every 4xx it
 * answers, so one without is a proxy's or load balancer's (nginx's 400 for plain HTTP sent to its
 * HTTPS port), which says nothing about the notice.
 */
function retryable(answer: CoreAnswer): boolean {
  const { status } = answer;
  if (status >= 400 && status < 500 && answer.reason === undefined) return true;
  return (status >= 300 && status < 400) || status >= 500 || status === 408 || status === 429 || status === 401 || status === 403 || status === 404;
}

/**
 * The wait before the next try: the jittered backoff, on top of the answer's `Retry-After` (at most
 * `maxMs`) when it sent one. Not the larger of the two: core tells every watcher of a wave the same
 * Retry-After, and 1,000 watchers waiting exactly that would all come back in the same instant, and
 * be refused again. Nor the sum capped: every watcher whose sum passed the cap would wait the cap.
 */
function retryWait(retryAfterMs: number | undefined, backoffMs: number, maxMs: number): number {
  return Math.min(maxMs, retryAfterMs ?? 0) + backoffMs;
}

/** Core's reasons for not taking one event that say nothing of the next: the flows it matches have no room for it. */
const FLOW_FULL: ReadonlySet<string> = new Set(['queue_full', 'too_many_groups']);

/** A queued event: its tries, its failures since its backoff (re)started, when it may be tried again, and the wait that set that. */
interface Queued {
  readonly event: OutgoingEvent;
  tries: number;
  failures: number;
  dueAt: number;
  waitMs: number;
}

/**
 * Delivers events to core in order, each tried until core answers 2xx: no answer and retryable
 * statuses wait a backoff (on top of the `Retry-After` core sent with `queue_full` and `overloaded`) and
 * try again with the same event, so core deduplicates a re-send by its id. An event whose flows
 * have no room (`queue_full`, `too_many_groups`) waits on its own: the events behind it, which
 * other flows may take (a spot interruption behind a rebalance recommendation), go on at once.
 * A 3xx is retried too, never followed. A 4xx of core's that no re-send can change (400 `bad_data`, 413, 415) is logged and
 * dropped; a 4xx core did not write (no `errorType`: a proxy's) is retried.
 * {@link enqueue} never waits, so polling goes on while a send is pending; memory is bounded by
 * `maxPending`.
 */
export class DeliveryQueue {
  private readonly pending: Queued[] = [];
  private readonly stop = new AbortController();
  /** Aborted by {@link hurry}, and by {@link enqueue} while {@link waitingOnFlows}: cuts the wait short. */
  private wake = new AbortController();
  /** The worker waits only for events whose flows were full: a new event need not wait with them. */
  private waitingOnFlows = false;
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

  /** Whether an event of this id waits for core. */
  holds(id: string): boolean {
    return this.pending.some((q) => q.event.id === id);
  }

  /** Queues an event; false (logged, counted) when the queue is full, false (logged) once it is closed. */
  enqueue(event: OutgoingEvent): boolean {
    const { metrics, logger, maxPending = 1_000 } = this.options;
    // Closed, no worker would send it (a failed run's notice re-sent while the watcher stops): said as close() says the rest.
    if (this.stop.signal.aborted) {
      logger.error(UNDELIVERED, { event_id: event.id, type: event.type });
      return false;
    }
    if (this.pending.length >= maxPending) {
      metrics.eventsDropped.inc();
      this.lost++;
      logger.error('delivery queue full: notice dropped', { event_id: event.id, type: event.type, max_pending: maxPending });
      return false;
    }
    this.pending.push({ event, tries: 0, failures: 0, dueAt: 0, waitMs: 0 });
    metrics.eventsPending.set(this.pending.length);
    if (this.waitingOnFlows) this.rouse();
    this.startWorker();
    return true;
  }

  /** Starts the worker unless it runs. */
  private startWorker(): void {
    this.worker ??= this.work().finally(() => {
      this.worker = undefined;
      // An event queued after the worker's loop found the queue empty, but before this ran, found it still running: it is sent now.
      if (this.pending.length > 0 && !this.stop.signal.aborted) this.startWorker();
      else for (const wake of this.idleWaiters.splice(0)) wake();
    });
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
   * Tries the queued events again now, each with its backoff started over: a stopping watcher spends
   * its grace trying, not waiting out a backoff that grew while core was away, or a long Retry-After.
   */
  hurry(): void {
    for (const queued of this.pending) {
      queued.failures = 0;
      queued.dueAt = 0;
    }
    this.rouse();
  }

  private rouse(): void {
    this.wake.abort();
    this.wake = new AbortController();
  }

  /** Stops sending; events still queued are logged as undelivered. */
  async close(): Promise<void> {
    this.stop.abort(new Error('delivery stopped'));
    await this.worker;
    for (const { event } of this.pending.splice(0)) this.options.logger.error(UNDELIVERED, { event_id: event.id, type: event.type });
    this.options.metrics.eventsPending.set(0);
  }

  private async work(): Promise<void> {
    const { send, backoff, clock, logger, metrics, maxRetryAfterMs = 60_000 } = this.options;
    const signal = this.stop.signal;
    while (this.pending.length > 0 && !signal.aborted) {
      const now = clock.now();
      // No event waits longer than it was told to from now: a wall clock stepped back (NTP) would add the step to every wait.
      for (const q of this.pending) q.dueAt = Math.min(q.dueAt, now + q.waitMs);
      const queued = this.pending.find((q) => q.dueAt <= now);
      if (!queued) {
        this.waitingOnFlows = true;
        await this.pause(Math.min(...this.pending.map((q) => q.dueAt)) - now);
        this.waitingOnFlows = false;
        continue;
      }
      const { event } = queued;
      let wait: number | undefined;
      let ownWait = false;
      queued.tries++;
      try {
        const answer = await send(event, signal);
        if (answer.status >= 200 && answer.status < 300) {
          metrics.sends.inc({ outcome: 'accepted' });
          logger.info('core accepted the notice', { event_id: event.id, type: event.type, tries: queued.tries });
          this.options.onAccepted?.(event);
        } else if (retryable(answer)) {
          metrics.sends.inc({ outcome: 'retried' });
          wait = retryWait(answer.retryAfterMs, backoff(++queued.failures), maxRetryAfterMs);
          ownWait = answer.reason !== undefined && FLOW_FULL.has(answer.reason);
          if (answer.location !== undefined) logger.error('core\'s URL answers with a redirect, which the watcher does not follow (it would send the notice and its credentials elsewhere); retrying: point --core-url at core itself', { event_id: event.id, status: answer.status, location: answer.location, retry_in_ms: Math.round(wait) });
          else logger.warn('core did not take the notice yet; retrying', { event_id: event.id, status: answer.status, reason: answer.reason, error: answer.message, retry_in_ms: Math.round(wait) });
        } else {
          metrics.sends.inc({ outcome: 'rejected' });
          this.lost++;
          logger.error('core refused the notice; it is dropped, a re-send would be refused the same way', { event_id: event.id, type: event.type, status: answer.status, reason: answer.reason, error: answer.message });
        }
      } catch (err) {
        if (signal.aborted) return;
        metrics.sends.inc({ outcome: 'failed' });
        wait = backoff(++queued.failures);
        logger.warn('no answer from core; retrying', { event_id: event.id, error: (err as Error).message, retry_in_ms: Math.round(wait) });
      }
      if (wait === undefined) {
        this.pending.splice(this.pending.indexOf(queued), 1);
        metrics.eventsPending.set(this.pending.length);
      } else if (ownWait) {
        // Only this event's flows are full: it waits, and the next events are tried now.
        queued.waitMs = wait;
        queued.dueAt = clock.now() + wait;
      } else {
        // Core itself is away or busy: every event waits.
        await this.pause(wait);
      }
    }
  }

  /** Waits `ms`, cut short by {@link hurry} and {@link close} (and {@link enqueue}, see {@link waitingOnFlows}). */
  private async pause(ms: number): Promise<void> {
    const cutShort = linkedSignal([this.stop.signal, this.wake.signal]);
    await this.options.clock.sleep(ms, cutShort.signal).catch(() => undefined);
    cutShort.release();
  }
}
