import { EC2Client } from '@aws-sdk/client-ec2';
import type { Logger } from 'pino';
import type { Clock } from '@hollowtrees/grpcplugin';
import { spotPriceSourceName, type SpotPriceConfig } from '../../config/schema.js';
import { awsClientConfig } from '../aws-client-config.js';
import type { EventSink } from '../event-sink.js';
import type { AddedFlows, EventSource, SourceState, SourceStatus } from '../event-source.js';
import { SourceHealth } from '../source-health.js';
import { crossingEvent, type CrossingPlace } from './crossing-event.js';
import { fellBack, findCrossings, fixedThreshold, jumpThreshold, settledTime, type Crossing, type PriceSample, type ThresholdRule } from './price-crossings.js';
import { readPriceHistory } from './price-history.js';
import { readSettledHistory, type PoolHistory } from './settled-history.js';
import type { SpotPriceMetrics } from './spot-price-metrics.js';
import { configuredPools, discoverPools, poolKey, type SpotPool } from './spot-pools.js';

/** The first retry after a failed poll; it doubles up to the interval. */
const FIRST_RETRY_MS = 1_000;

/** An EC2 call that failed after the SDK's retries, named by its action: AWS's own message often does not say which call it was. */
class Ec2CallError extends Error {
  constructor(
    readonly action: string,
    cause: unknown,
  ) {
    super(`${action}: ${(cause as Error).name}: ${(cause as Error).message}`, { cause });
    this.name = 'Ec2CallError';
  }
}

/**
 * The flows an event is still to be handed to: those that had no room for it (`all` when none could be asked, or the
 * store could not keep what they took). Empty once every flow took it.
 */
type StillFor = ReadonlySet<string> | 'all';

const TAKEN: StillFor = new Set<string>();

/** The flows still to take an event once `more` are too. */
function stillForBoth(still: StillFor, more: StillFor): StillFor {
  if (still === 'all' || more === 'all') return 'all';
  if ([...more].every((flow) => still.has(flow))) return still;
  return new Set([...still, ...more]);
}

/** An open surge handed to the flows, the pool it is in, and the flows still to take it and its end. */
interface AnnouncedSurge {
  readonly place: CrossingPlace;
  readonly crossing: Crossing;
  /**
   * Flows that had no room for it, and flows a reload added since it was handed in: it is handed in again to them alone
   * at each poll while it lasts. A reload adds to it at any time, also while it is being handed in (see `handSurge`).
   */
  surgeFor: StillFor;
  /** Set once every flow configured when it was handed in took it: handed in again to flows a reload added, it is no new crossing. */
  counted?: true;
  /** Once its end was handed in, the flows still to take that. */
  endFor?: StillFor;
}

/**
 * Watches the Spot price history of a region's pools and announces each
 * threshold crossing once: `aws.ec2.spot.price-surge` when a pool's price goes
 * above a threshold, `aws.ec2.spot.price-surge.resolved` when it falls back.
 *
 * What a surge is comes from the history alone ({@link findCrossings}), so a
 * re-poll, a restart or another replica gives the same crossing the same id.
 * The source remembers which surges it announced so it announces each edge
 * once; an event the flows could not take is announced again at the next poll,
 * with the same id, to those flows alone, and the end of a surge handed to the flows is announced
 * even when a flow never had room for the surge itself.
 */
export class SpotPriceSource implements EventSource {
  readonly kind = 'spot-price';
  readonly name: string;
  private client: EC2Client | undefined;
  private sink: EventSink | undefined;
  private loop: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private state: SourceState = 'starting';
  /** Ends the wait for the next poll; set while the loop waits. */
  private wake: AbortController | undefined;
  /** A poll was asked for while one ran: the next one comes without waiting. */
  private pollAgain = false;
  private readonly health = new SourceHealth();
  /**
   * Open surges handed to the flows, by pool and threshold kind, refused ones
   * too: a flow may have taken one another refused, and its action (a
   * cordoned pool) needs the end.
   */
  private readonly announced = new Map<string, AnnouncedSurge>();
  /**
   * Pools and threshold kinds this process has brought in line with their
   * history; until then, the end of the latest surge in it is announced (it
   * may have gone unannounced when the process stopped).
   */
  private readonly settled = new Set<string>();
  /** Of those not yet settled, the flows still to take the end of the latest surge (which began at `crossedAt`), once it was handed in. */
  private readonly lateEndFor = new Map<string, { crossedAt: number; still: StillFor }>();
  /** Where each pool's last read back began (see {@link readSettledHistory}). */
  private readonly readBackHints = new Map<string, number>();
  /** Instance types found by discovery that have no on-demand price: warned about once. */
  private readonly unpriced = new Set<string>();
  /** Names the entry in log lines: its name and settings may come from ${VAR}, which nothing logs. */
  private readonly entry: string;

  constructor(
    private readonly config: SpotPriceConfig,
    /** Its index in `sources.spotPrice`, for log lines that name the entry. */
    index: number,
    private readonly metrics: SpotPriceMetrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
    /** What an event's receipt is read on: the run state's clock, which the engine times the event's runs on. Default `clock`. */
    private readonly receiptClock: Clock = clock,
  ) {
    this.name = spotPriceSourceName(config);
    this.entry = `sources.spotPrice[${index}]`;
    metrics.initSource(this.name);
  }

  /**
   * A reload added or changed flows: those whose version before did not match a surge still open are handed it at once,
   * at a poll made now, and only they are, so a flow that matched it before does not hear it twice. A surge that ended
   * is not handed to them.
   */
  flowsAdded(flows: AddedFlows): void {
    for (const surge of this.announced.values()) {
      const event = crossingEvent(surge.place, surge.crossing, 'surge');
      const newTo = new Set([...flows].filter(([, matchedBefore]) => !matchedBefore(event)).map(([flow]) => flow));
      if (newTo.size > 0) surge.surgeFor = stillForBoth(surge.surgeFor, newTo);
    }
    this.pollNow();
  }

  start(sink: EventSink): Promise<void> {
    const { region, endpoint, callTimeout } = this.config;
    this.client = new EC2Client(awsClientConfig({ region, endpoint, callTimeout }));
    this.sink = sink;
    this.loop = this.run();
    this.logger.info({ source: this.entry, intervalMs: this.config.interval }, 'watching Spot prices');
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.state !== 'stopped') this.state = 'stopping';
    this.stopping.abort();
    await this.loop;
  }

  async close(): Promise<void> {
    await this.stop();
    this.client?.destroy();
    this.state = 'stopped';
  }

  status(): SourceStatus {
    return this.health.status(this.name, this.kind, this.state, 0);
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let retry = FIRST_RETRY_MS;
    while (!signal.aborted) {
      let wait = this.config.interval;
      try {
        await this.poll(signal);
        retry = FIRST_RETRY_MS;
        if (!signal.aborted) this.state = 'running';
      } catch (err) {
        if (signal.aborted) break;
        this.state = 'failing';
        // A throttled or failing API is asked again sooner than the next poll, but never more often than backing off allows.
        wait = Math.min(retry, this.config.interval);
        retry *= 2;
        const action = err instanceof Ec2CallError ? err.action : undefined;
        this.logger.error({ err, source: this.entry, action, retryInMs: wait }, `a poll of the Spot prices failed${action ? ` (${action})` : ''}; trying again`);
      }
      if (this.pollAgain) {
        this.pollAgain = false;
        continue;
      }
      this.wake = new AbortController();
      await this.clock.sleep(wait, AbortSignal.any([signal, this.wake.signal])).catch(() => {});
      this.wake = undefined;
    }
  }

  /** Polls now: at once while the loop waits, or right after the poll running. */
  private pollNow(): void {
    if (this.wake) this.wake.abort();
    else this.pollAgain = true;
  }

  private async poll(signal: AbortSignal): Promise<void> {
    const pools = await this.call('DescribeInstances', () => this.pools(signal));
    this.metrics.pools.set({ source: this.name }, pools.length);
    const { productDescription, hysteresis, jump } = this.config;
    const now = this.clock.now();
    const from = now - this.config.history;
    const rules = new Map(pools.map((pool) => [poolKey(pool), this.rules(pool)]));
    const history =
      pools.length === 0
        ? new Map<string, PoolHistory>()
        : await this.call('DescribeSpotPriceHistory', () =>
            readSettledHistory((asked, start, end) => readPriceHistory(this.client!, { pools: asked, productDescription, from: start, to: end }, signal), {
              pools,
              // A jump's level looks a window back, and whether a change in the window before `from` crossed looks one more.
              from: from - 2 * (jump?.window ?? 0),
              to: now,
              settled: (pool, read) => rules.get(poolKey(pool))!.every((rule) => settledTime(read.samples, rule, hysteresis, from) !== undefined),
              hints: this.readBackHints,
            }),
          );
    this.metrics.polls.inc({ source: this.name });
    this.health.received(now);
    for (const pool of pools) {
      const samples = history.get(poolKey(pool))?.samples ?? [];
      for (const rule of rules.get(poolKey(pool))!) {
        if (signal.aborted) return;
        const place = { region: this.config.region, pool, productDescription };
        // From a time no surge was open, or from the oldest sample EC2 has; a surge that ended before the window is no news.
        const after = settledTime(samples, rule, hysteresis, from) ?? -Infinity;
        const crossings = findCrossings(samples, rule, hysteresis, after).filter((c) => c.resolvedAt === undefined || c.resolvedAt >= from);
        await this.reconcile(place, `${poolKey(pool)}#${rule.kind}`, crossings, samples);
      }
    }
  }

  /**
   * Brings what was announced for one pool and threshold (`key`) in line with
   * its crossings. A surge that began and ended between two polls is not
   * announced: it is over before anything could act on it.
   */
  private async reconcile(place: CrossingPlace, key: string, crossings: readonly Crossing[], samples: readonly PriceSample[]): Promise<void> {
    const latest = crossings.at(-1);
    const open = latest?.resolvedAt === undefined ? latest : undefined;
    const known = this.announced.get(key);
    if (known) {
      // Only a price back at or below the reset level ends it: a crossing the read no longer finds (a jump whose level caught up) does not.
      const end = crossings.find((c) => c.crossedAt === known.crossing.crossedAt) ?? fellBack(samples, known.crossing, this.config.hysteresis);
      if (end?.resolvedAt === undefined) {
        if (known.surgeFor !== TAKEN) await this.handSurge(place, known, known.surgeFor);
        return;
      }
      known.endFor = await this.announce(place, end, 'resolved', known.endFor ?? 'all');
      if (known.endFor !== TAKEN) return;
      this.announced.delete(key);
    } else if (latest && !open && !this.settled.has(key)) {
      // After a restart nothing says whether the last surge's end was announced before: it is again, with its id.
      const late = this.lateEndFor.get(key);
      const still = await this.announce(place, latest, 'resolved', late?.crossedAt === latest.crossedAt ? late.still : 'all');
      if (still !== TAKEN) return void this.lateEndFor.set(key, { crossedAt: latest.crossedAt, still });
      this.lateEndFor.delete(key);
      this.settled.add(key);
      return;
    }
    this.settled.add(key);
    this.lateEndFor.delete(key);
    if (!open) return;
    // Kept even when refused: a flow that did take it (a pool cordoned) must hear of its end, though another flow never had room for it.
    // Kept before it is handed in: a reload meanwhile adds the flows it did not ask (see handSurge).
    const surge: AnnouncedSurge = { place, crossing: open, surgeFor: TAKEN };
    this.announced.set(key, surge);
    await this.handSurge(place, surge, 'all');
  }

  /**
   * Hands `surge` in to the flows `to`. A reload while it is handed in may add flows (see {@link flowsAdded}): the
   * event went to the engine before it, so they are kept with those that had no room, not overwritten by the answer.
   */
  private async handSurge(place: CrossingPlace, surge: AnnouncedSurge, to: StillFor): Promise<void> {
    surge.surgeFor = TAKEN;
    const still = await this.announce(place, surge.crossing, 'surge', to, surge.counted === undefined);
    surge.surgeFor = stillForBoth(surge.surgeFor, still);
    if (still === TAKEN) surge.counted = true;
  }

  /**
   * Hands the event to the flows `to`; returns those still to take it ({@link TAKEN} once accepted and durable, see
   * {@link EventSink}). Handed in again, it goes to those alone: a flow that took it and has no cooldown would act again.
   */
  private async announce(place: CrossingPlace, crossing: Crossing, edge: 'surge' | 'resolved', to: StillFor, newCrossing = true): Promise<StillFor> {
    const sink = this.sink!;
    const event = crossingEvent(place, crossing, edge);
    const fields = { source: this.entry, eventId: event.id, type: event.type, ...event.data.labels };
    const result = sink.durable ? sink.accept(event, this.receiptClock.now(), undefined, to === 'all' ? {} : { flows: to }) : undefined;
    const drop = result?.dropped[0];
    const kept = result !== undefined && (await sink.commit());
    if (!kept || drop) {
      this.metrics.refused.inc({ source: this.name });
      this.logger.warn({ ...fields, ...(drop ? { flow: drop.flow, reason: drop.reason } : {}) }, 'the flows could not take a Spot price event now; it is announced again at the next poll');
      // What the others took is kept (the commit says so): only the flows with no room are asked again.
      return kept ? new Set(result.dropped.map((d) => d.flow)) : to;
    }
    if (!newCrossing) {
      this.logger.info({ ...fields, ...(to === 'all' ? {} : { flows: [...to] }) }, 'a Spot price surge still open was handed to the flows a reload added or changed to match it');
      return TAKEN;
    }
    this.metrics.crossings.inc({ source: this.name, threshold_kind: crossing.kind, edge });
    this.logger.info(fields, edge === 'surge' ? 'Spot price crossed its threshold' : 'Spot price fell back below its threshold');
    return TAKEN;
  }

  private async pools(signal: AbortSignal): Promise<SpotPool[]> {
    const { instanceTypes, availabilityZones, discover } = this.config;
    const pools = new Map<string, SpotPool>();
    for (const pool of configuredPools(instanceTypes ?? [], availabilityZones ?? [])) pools.set(poolKey(pool), pool);
    if (discover) for (const pool of await discoverPools(this.client!, discover.tags, signal)) pools.set(poolKey(pool), pool);
    // A surge's flow moves capacity out of its pool, which discovery then no longer finds: its end must still be announced.
    for (const { place } of this.announced.values()) pools.set(poolKey(place.pool), place.pool);
    return [...pools.values()];
  }

  /** The thresholds of a pool: an on-demand ratio only for a type whose on-demand price is configured. */
  private rules(pool: SpotPool): ThresholdRule[] {
    const { maxPrice, onDemandRatio, onDemandPrices, jump } = this.config;
    const rules: ThresholdRule[] = [];
    if (maxPrice !== undefined) rules.push(fixedThreshold('absolute', maxPrice));
    if (onDemandRatio !== undefined) {
      const onDemand = onDemandPrices[pool.instanceType];
      if (onDemand !== undefined) rules.push(fixedThreshold('on-demand-ratio', onDemandRatio * onDemand));
      else if (!this.unpriced.has(pool.instanceType)) {
        this.unpriced.add(pool.instanceType);
        this.logger.warn({ source: this.entry, instanceType: pool.instanceType }, 'no on-demand price configured for a discovered instance type (onDemandPrices): its pools are not checked against onDemandRatio');
      }
    }
    if (jump) rules.push(jumpThreshold(jump.ratio, jump.window));
    return rules;
  }

  /** Runs an EC2 call, counting and recording its failure (after the SDK's own retries) as an {@link Ec2CallError}. */
  private async call<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (this.stopping.signal.aborted) throw err;
      const failure = new Ec2CallError(action, err);
      this.metrics.apiErrors.inc({ source: this.name, action });
      this.health.failed(this.clock.now(), failure.message);
      throw failure;
    }
  }
}
