import { exponentialBackoff, type Clock, type PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import type { AzureApproval } from './azure-scheduled-events.js';
import type { FinishedRunView, GroupView } from './core-client.js';

const APPROVAL_LOG: Readonly<Record<AzureApproval, string>> = {
  approved: 'approved the Azure event after every flow run of it succeeded',
  shared: 'not approving the Azure event: it names other VMs too, which it would let go ahead; Azure waits for NotBefore',
  gone: 'not approving the Azure event: Azure no longer lists it',
  started: 'not approving the Azure event: Azure has started it already',
};

/** The default longest wait between two looks at core's runs of one event, in `intervalMs`. */
const DEFAULT_MAX_INTERVALS = 10;

/** Options of {@link AzureApprover}. */
export interface AzureApprovalOptions {
  /** Core's finished runs of one event, newest first. */
  runsOf(eventId: string, signal: AbortSignal): Promise<FinishedRunView[]>;
  /** The groups core holds under one event's id; undefined when there are too many to look through. */
  groupsOf(eventId: string, signal: AbortSignal): Promise<GroupView[] | undefined>;
  /** `StartRequests` for the event of one notice, when it may be sent. */
  approve(eventId: string, signal: AbortSignal): Promise<AzureApproval>;
  /** The first wait between looks at core's runs; each next one doubles, up to `maxIntervalMs`. */
  intervalMs: number;
  /**
   * The longest wait between looks: an event whose runs succeed is approved within about this long. Default 10 ×
   * `intervalMs` (10 s at the watcher's default `--poll-interval`). Bounded so approval stays prompt, backed off so the events of a scale set's
   * eviction (one per VM, all tracked at once) do not each read core's runs every `intervalMs`.
   */
  maxIntervalMs?: number;
  /** Returns [0, 1): each wait is scaled by 0.5 + random / 2, so events tracked at once look at different times. Default `Math.random`. */
  random?: () => number;
  /** Gives up after this long: by then Azure has gone ahead at `NotBefore` anyway. Default 15 min. */
  maxWaitMs?: number;
  clock: Clock;
  logger: PluginLogger;
}

/**
 * `--azure-approve`: once every flow run a delivered Azure event started succeeded, approves the
 * event (`StartRequests`), so Azure goes ahead at once instead of at `NotBefore`: the node is
 * drained, nothing is gained by waiting. A failed run is never approved, nor an event that names
 * other VMs too; Azure then waits its full notice.
 *
 * Which flows run the event is read once, right after core accepted it: from its 200 on, each run
 * the event started holds its flow's group under the event's id (running, or cooling down when it
 * already succeeded). A flow counts as done once its latest run of the event listed succeeded.
 * An event with neither a group nor a run at that first look runs in no flow: it is not approved.
 */
export class AzureApprover {
  private readonly stopping = new AbortController();
  private readonly tracking = new Set<Promise<void>>();

  constructor(private readonly options: AzureApprovalOptions) {}

  /** Starts watching core's runs of a delivered event. */
  track(eventId: string): void {
    const done = this.follow(eventId).finally(() => this.tracking.delete(done));
    this.tracking.add(done);
  }

  /** Stops watching; resolves once every watch has ended. */
  async close(): Promise<void> {
    this.stopping.abort(new Error('watcher stopping'));
    await Promise.all(this.tracking);
  }

  private async follow(eventId: string): Promise<void> {
    const { clock, logger, intervalMs, maxWaitMs = 15 * 60_000, random } = this.options;
    const maxMs = Math.max(intervalMs, this.options.maxIntervalMs ?? DEFAULT_MAX_INTERVALS * intervalMs);
    const wait = exponentialBackoff({ initialMs: intervalMs, maxMs, ...(random && { random }) });
    let looks = 0;
    const signal = this.stopping.signal;
    const deadline = clock.now() + maxWaitMs;
    // The flows whose groups the event holds, and whether each was already cooling down (its run succeeded).
    let held: Map<string, boolean> | undefined;
    while (!signal.aborted && clock.now() < deadline) {
      try {
        if (!held) {
          const groups = await this.options.groupsOf(eventId, signal);
          if (!groups) {
            logger.warn('not approving the Azure event: core holds too many groups to find the flows running it; Azure waits its full notice', { event_id: eventId });
            return;
          }
          held = new Map(groups.map((g) => [g.flow, g.phase === 'cooling']));
        }
        const cooling = held;
        const runs = await this.options.runsOf(eventId, signal);
        // Core holds every group an accepted event started until its run ends, and lists the run after: neither means no flow runs it.
        if (cooling.size === 0 && runs.length === 0) {
          logger.info('not approving the Azure event: no flow of core runs it (none takes it, or each was already running the event of another notice); Azure waits its full notice', { event_id: eventId });
          return;
        }
        if (runs.some((r) => r.outcome === 'failed')) {
          logger.warn('a flow run of the Azure event failed; not approving it, Azure waits its full notice', { event_id: eventId, runs });
          return;
        }
        const latest = new Map<string, string>();
        for (const run of runs) if (!latest.has(run.flow)) latest.set(run.flow, run.outcome);
        const flows = [...new Set([...cooling.keys(), ...latest.keys()])];
        const done = (flow: string): boolean => (latest.get(flow) ?? (cooling.get(flow) ? 'succeeded' : undefined)) === 'succeeded';
        if (flows.length > 0 && flows.every(done)) {
          const approval = await this.options.approve(eventId, signal);
          logger.info(APPROVAL_LOG[approval], { event_id: eventId, flows });
          return;
        }
      } catch (err) {
        if (signal.aborted) return;
        logger.warn('cannot approve the Azure event yet; trying again', { event_id: eventId, error: (err as Error).message });
      }
      await clock.sleep(wait(++looks), signal).catch(() => undefined);
    }
    // Said, or an on-call engineer could not tell a slow run from a watcher that never looked.
    if (!signal.aborted) logger.warn('not approving the Azure event: its flow runs did not all succeed in time; Azure goes ahead at NotBefore', { event_id: eventId, waited_ms: maxWaitMs });
  }
}
