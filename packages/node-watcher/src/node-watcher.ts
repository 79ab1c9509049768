import { wallTimeOf, type Backoff, type Clock, type PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import { DeliveryQueue, type OutgoingEvent, type SendEvent } from './delivery-queue.js';
import { ListedNotices } from './listed-notices.js';
import { PartialCheckError, type Monitor, type MonitorSink } from './monitor.js';
import type { InstanceIdentity, Notice } from './notice.js';
import type { StateFileError } from './occurrence-file.js';
import { noticeEvent } from './notice-event.js';
import { MAX_RETRY_WAIT_MS } from './poll-loop.js';
import type { WatcherMetrics } from './watcher-metrics.js';

/**
 * What a `--state-file` that cannot be read or written means (see `OccurrenceFile`): the occurrences a watcher
 * restarted in this boot starts from are not the ones this one saw.
 */
const STATE_FILE_FAILED: Readonly<Record<StateFileError['operation'], string>> = {
  read: 'cannot read the state file (--state-file): this watcher starts as without one, so a maintenance that came back before this restart is sent under the first one\'s id, which core takes for a re-send while its group cools down',
  write:
    'cannot write the state file (--state-file): a watcher restarted in this boot starts from what the file held before, so a maintenance that came back may be acted on again under a new id, or taken for the first one and not acted on; this watcher goes on with what it holds in memory',
};

/** Options of {@link NodeWatcher}. */
export interface NodeWatcherOptions {
  monitor: Monitor;
  /** The Kubernetes node name (`NODE_NAME`), for `labels.node`. */
  nodeName: string | undefined;
  /** Where events go; undefined for a dry run (each event is logged instead). */
  send: SendEvent | undefined;
  clock: Clock;
  /** Waits after failed metadata requests and failed sends. */
  backoff: Backoff;
  logger: PluginLogger;
  metrics: WatcherMetrics;
  /** Events waiting for core at most. Default 1 000. */
  maxPending?: number;
  /** Told of each event core accepted (for `--azure-approve`). */
  onAccepted?: (event: OutgoingEvent) => void;
}

/**
 * Watches one instance's metadata service and sends each notice to core once: a notice seen at
 * every poll is queued the first time only (a full queue's refusal does not count), and again only
 * after a read showed it gone; its event (the same object at every try) goes to core through a
 * {@link DeliveryQueue} that polling never waits for.
 */
export class NodeWatcher {
  private readonly listed = new ListedNotices();
  private readonly delivery: DeliveryQueue | undefined;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private identityKnown: InstanceIdentity | undefined;
  /** Why the last read of the identity failed. */
  private identityError: string | undefined;
  /** On the wall clock, as `/healthz` shows it. */
  private lastPollAt: number | undefined;

  constructor(private readonly options: NodeWatcherOptions) {
    const { send, backoff, clock, logger, metrics, maxPending, onAccepted } = options;
    this.delivery = send && new DeliveryQueue({ send, backoff, clock, logger, metrics, ...(maxPending !== undefined && { maxPending }), ...(onAccepted && { onAccepted }) });
  }

  /** What `/healthz` reports. */
  status(): Record<string, unknown> {
    return {
      cloud: this.options.monitor.cloud,
      instance_id: this.identityKnown?.instanceId ?? null,
      last_poll: this.lastPollAt === undefined ? null : new Date(this.lastPollAt).toISOString(),
      pending: this.delivery?.size ?? 0,
    };
  }

  /**
   * Why the watcher does not watch yet (for `/readyz`), undefined once it does: until the instance's
   * identity is read, no notice can be seen, whatever the process's liveness says.
   */
  notReady(): string | undefined {
    if (this.identityKnown) return undefined;
    const why = this.identityError === undefined ? '' : `: ${this.identityError}`;
    return `the instance identity has not been read from the ${this.options.monitor.cloud} metadata service yet${why}`;
  }

  /** Reads the instance's identity (retrying with backoff until it answers), then watches until {@link stop}. */
  start(): void {
    const signal = this.stopping.signal;
    this.running ??= (async () => {
      const identity = await this.identity(signal);
      if (!identity) return;
      await this.options.monitor.watch(identity, this.sink(identity), signal);
    })();
  }

  /**
   * Checks once, queues what it found and waits up to `timeoutMs` for core to accept it.
   * Returns how many notices were found, whether core accepted all of them, and whether every part
   * of the metadata service was read: a part that failed is logged, and what the others showed is
   * sent all the same (a spot interruption must not wait for a broken maintenance path).
   * @throws MetadataError when the instance identity cannot be read.
   */
  async once(timeoutMs: number): Promise<{ notices: number; delivered: boolean; complete: boolean }> {
    const { monitor, metrics, logger } = this.options;
    const signal = this.stopping.signal;
    const identity = await monitor.identity(signal);
    this.identityKnown = identity;
    metrics.polls.inc({ cloud: monitor.cloud });
    let notices: readonly Notice[];
    let complete = true;
    try {
      notices = await monitor.check(identity, signal);
    } catch (err) {
      if (!(err instanceof PartialCheckError)) throw err;
      notices = err.found;
      complete = false;
      metrics.metadataErrors.inc({ cloud: monitor.cloud });
      logger.error('part of the metadata service could not be read: a notice there is not seen; what the rest showed is sent', { cloud: monitor.cloud, error: err.message, notices: notices.length });
    }
    const { delivery } = this;
    const droppedBefore = delivery?.dropped ?? 0;
    this.sink(identity).notices('check', notices);
    // Idle means every notice left the queue; a notice core refused left it without reaching core.
    return { notices: notices.length, delivered: delivery ? (await delivery.idle(timeoutMs)) && delivery.dropped === droppedBefore : true, complete };
  }

  /** Whether the metadata service listed the notice of this event id at its last read. */
  lists(eventId: string): boolean {
    return this.listed.lists(eventId);
  }

  /**
   * Queues the event of a notice again (its run failed in core), unless it waits for core already;
   * false when the queue had no room or is closed, the watcher stopping (logged there), or the watcher does not send.
   */
  resend(event: OutgoingEvent): boolean {
    if (!this.delivery) return false;
    return this.delivery.holds(event.id) || this.delivery.enqueue(event);
  }

  /** Stops polling, gives the events still queued up to `graceMs` to reach core (trying again at once), then stops sending. */
  async stop(graceMs: number): Promise<void> {
    this.stopping.abort(new Error('watcher stopping'));
    await this.running;
    if (!this.delivery) return;
    // No grace (--once is done): a try now would only race the close below.
    if (graceMs > 0) this.delivery.hurry();
    await this.delivery.idle(graceMs);
    await this.delivery.close();
  }

  private async identity(signal: AbortSignal): Promise<InstanceIdentity | undefined> {
    const { monitor, backoff, clock, logger, metrics } = this.options;
    for (let failures = 1; !signal.aborted; failures++) {
      try {
        this.identityKnown = await monitor.identity(signal);
        logger.info('watching the metadata service', { cloud: monitor.cloud, instance_id: this.identityKnown.instanceId, node: this.options.nodeName, dry_run: !this.delivery });
        return this.identityKnown;
      } catch (err) {
        if (signal.aborted) break;
        metrics.metadataErrors.inc({ cloud: monitor.cloud });
        this.identityError = (err as Error).message;
        logger.warn('cannot read the instance identity from the metadata service; retrying', { cloud: monitor.cloud, error: this.identityError });
        // Capped as the polls' retries are: until the identity is read, no notice is seen.
        await clock.sleep(Math.min(backoff(failures), MAX_RETRY_WAIT_MS), signal).catch(() => undefined);
      }
    }
    return undefined;
  }

  private sink(identity: InstanceIdentity): MonitorSink {
    const { monitor, clock, logger, metrics, nodeName } = this.options;
    const cloud = monitor.cloud;
    return {
      polled: () => {
        this.lastPollAt = wallTimeOf(clock, clock.now());
        metrics.polls.inc({ cloud });
      },
      metadataError: (err) => {
        metrics.metadataErrors.inc({ cloud });
        logger.warn('metadata request failed; retrying', { cloud, error: err.message });
      },
      stateFileError: (err) => {
        // Counted with the metadata errors, as before its own words: the metric's series stay as they were.
        metrics.metadataErrors.inc({ cloud });
        logger.warn(STATE_FILE_FAILED[err.operation], { cloud, path: err.path, error: (err.cause as Error).message });
      },
      notices: (part: string, found: readonly Notice[]) => {
        const fresh = new Set(this.listed.relist(part, found.map((n) => n.id)));
        for (const notice of found) {
          // Taken out as it is offered: an id a read lists twice (a broken IMDS or proxy) is one notice.
          if (!fresh.delete(notice.id)) continue;
          // Back before its first send went through: that send carries it.
          if (this.delivery?.holds(notice.id)) continue;
          const event = noticeEvent({ cloud, identity, nodeName, notice, seenAt: wallTimeOf(clock, clock.now()) });
          // Dropped from a full queue (logged there), it is offered again at the next poll, and queued once there is room.
          if (this.delivery && !this.delivery.enqueue(event)) {
            this.listed.forget(part, notice.id);
            continue;
          }
          metrics.notices.inc({ type: event.type });
          logger.info(this.delivery ? 'notice seen; sending it to core' : 'notice seen (dry run: not sent)', { event_id: event.id, type: event.type, labels: event.data.labels, ...(!this.delivery && { event }) });
        }
      },
    };
  }
}
