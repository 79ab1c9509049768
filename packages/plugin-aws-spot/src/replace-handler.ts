import { labelsOf, type CloudEvent, type EventHandler, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';
import { jsonLogger, steadyClock, type Clock, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { abortReason, untilAborted } from './abortable.js';
import { notAMember } from './asg-detach.js';
import type { AwsCredentials } from './aws-clients.js';
import { located, toPluginError } from './aws-error.js';
import { regionLabelOf } from './event-region.js';
import { isRegionName, REGION_EXAMPLE } from './region-name.js';
import { replaceWithFleet } from './fleet-replace.js';
import { instanceIdOf } from './instance-id.js';
import { replacePool } from './pool-replace.js';
import { isPoolMode, poolSettings, type PoolOptions } from './pool-settings.js';
import { poolOfEvent } from './spot-pool.js';
import type { InstanceInfo } from './instance-lookup.js';
import { RegionalReplacer, type RequestedReplacement } from './regional-replacer.js';
import type { ReplacementOutcome } from './replacement-outcome.js';
import type { RetryOptions } from './retry-strategy.js';
import { AUTO_SCALING_GROUP_TAG, DETACHED_FROM_TAG } from './tags.js';
import type { ReplacementStrategy } from './replacement-strategy.js';

/** The `service` field of the plugin's log lines. */
export const SERVICE = 'hollowtrees-aws-spot';
export { REPLACEMENT_STRATEGIES, type ReplacementStrategy } from './replacement-strategy.js';

/** The `strategy` attribute of a pool-mode answer. */
const POOL_STRATEGY = 'pool-fleet';
/** The suffix of a resolution's event type (a price surge that is over). */
const RESOLVED = '.resolved';

/** Options for {@link AwsSpotReplaceHandler}; every field has a default. */
export interface AwsSpotReplaceOptions {
  /** Region for events without `labels.region` (or with an empty one). Default: the SDK's chain (`AWS_REGION`, then the profile's region). */
  region?: string;
  /** Endpoint for both EC2 and Auto Scaling, for stand-ins and demos. Default: AWS's regional endpoints. */
  endpoint?: string;
  /** Default: the SDK's default credential chain. */
  credentials?: AwsCredentials;
  /** Default `auto`. */
  strategy?: ReplacementStrategy;
  /** Instance types a fleet replacement may use, in order of preference. Default: the old type, then the same size in sibling families. */
  instanceTypes?: readonly string[];
  /** Launch on-demand when spot has none to give (InsufficientInstanceCapacity, UnfulfillableCapacity, SpotMaxPriceTooLow, MaxSpotInstanceCountExceeded, MaxSpotFleetRequestCountExceeded). Default true. */
  onDemandFallback?: boolean;
  /** Check and log instead of acting: EC2 calls carry `DryRun`, Auto Scaling calls are only logged. Default false. */
  dryRun?: boolean;
  /** SDK retries of each AWS call. Default: 4 attempts, 100 ms base backoff (500 ms after throttling), 2 s cap, a retry quota of 500. */
  retry?: RetryOptions;
  /**
   * Connections each SDK client keeps to its endpoint; more calls wait for one,
   * and a queue of twice as many is logged as "socket usage at capacity".
   * Default 128 (the SDK's own is 50).
   */
  maxSockets?: number;
  /**
   * How long a look-up or a detach waits for others to share its AWS call
   * (DescribeInstances of up to 100 instances, DetachInstances of up to 20).
   * Default 25 ms.
   */
  coalesceMs?: number;
  /** DetachInstances calls of one group in flight at once. Default 4. */
  detachConcurrency?: number;
  /**
   * How long an instance's description and a requested replacement are
   * remembered, so core's retries and repeated events do not call AWS again.
   * Default 120 000 ms (a spot notice).
   */
  rememberMs?: number;
  /** A detach still queued this close to the call's deadline is answered RESOURCE_EXHAUSTED. Default 1 000 ms. */
  replyMarginMs?: number;
  /**
   * When a member in `Terminating:Wait` gets its termination lifecycle actions
   * completed: `always`, or `after-drain`, only when the event shows the node
   * was drained first in the same run (`labels.pods_remaining` is `0`, as the
   * k8s-drain plugin answers), for a flow that requests the replacement before
   * the drain. Default `always`.
   */
  completeLifecycleHooks?: 'always' | 'after-drain';
  /**
   * Pool mode (a flow's config `mode: pool`): the plugin-wide defaults. See
   * {@link PoolOptions}; `instanceTypes`, `onDemandFallback`, `dryRun` and
   * `replyMarginMs` apply too.
   */
  pool?: PoolOptions;
  /** Default: JSON lines on stdout, in core's format. */
  logger?: Logger;
  /**
   * Where `duration_ms`, the `rememberMs` windows and the pool waits read time. Default {@link steadyClock}: a step of the wall
   * clock (NTP after a VM resumed) neither ends a window early, so that a call repeated inside it would ask AWS again, nor stretches it.
   */
  clock?: Clock;
}

/** The region a replacer works in, as an error names it. */
const regionNote = (region: RegionalReplacer): string => (region.region === undefined ? "the SDK's default region" : `region ${region.region}`);

/** The Auto Scaling group an instance is (or was) in, as an error names it; empty when none is known. */
function groupNote(instance: InstanceInfo | undefined): string {
  const group = instance?.group?.name ?? instance?.tags[DETACHED_FROM_TAG] ?? instance?.tags[AUTO_SCALING_GROUP_TAG];
  return group === undefined ? '' : ` of Auto Scaling group ${group}`;
}

function strategyFor(configured: ReplacementStrategy, instance: InstanceInfo): 'asg-detach' | 'fleet' {
  if (configured !== 'auto') return configured;
  // A former member (detached by an earlier run, or terminated by its group) stays with the group: no second replacement.
  const groupMember = instance.group !== undefined || DETACHED_FROM_TAG in instance.tags || AUTO_SCALING_GROUP_TAG in instance.tags;
  return groupMember ? 'asg-detach' : 'fleet';
}

/**
 * The plugin's {@link EventHandler}: replaces the EC2 instance named by the
 * event's `labels.instance_id` (in `labels.region`, or the configured region),
 * and answers with the attributes `replacement_instance_id` (fleet) or
 * `auto_scaling_group` + `replacement_requested` (group), plus `strategy` and
 * `duration_ms`.
 *
 * With the flow's config `mode: pool` it acts on the event's spot pool
 * instead: every spot instance of it gets a replacement in another pool, and
 * the call answers once they all run (see the README's *Pool mode*), with the
 * attributes `pool`, `instances`, `replacements_requested`,
 * `replacements_existing` and `replacements_running`.
 *
 * Built for waves: look-ups of many instances share DescribeInstances calls,
 * detaches from one group are batched (see `GroupDetacher`), and a replacement
 * once requested is remembered, so a retried or repeated call is answered
 * without calling AWS.
 *
 * @example
 * ```ts
 * import { serve } from '@hollowtrees/grpcplugin';
 * import { AwsSpotReplaceHandler } from '@hollowtrees/plugin-aws-spot';
 * const handler = new AwsSpotReplaceHandler({ region: 'eu-west-1', strategy: 'auto' });
 * await serve(9001, handler, { handleSignals: true });
 * ```
 */
export class AwsSpotReplaceHandler implements EventHandler {
  private readonly regions = new Map<string, RegionalReplacer>();
  private readonly options: AwsSpotReplaceOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;

  /** @throws TypeError when `options.region` cannot be a region name: the SDK would refuse it only at each call. */
  constructor(options: AwsSpotReplaceOptions = {}) {
    if (options.region !== undefined && !isRegionName(options.region)) {
      throw new TypeError(`AwsSpotReplaceOptions.region "${options.region}" is not an AWS region name ${REGION_EXAMPLE}`);
    }
    this.options = options;
    this.logger = options.logger ?? jsonLogger({ service: SERVICE });
    this.clock = options.clock ?? steadyClock;
  }

  /** Replaces the event's instance; rejects with a PluginError whose code says whether core should retry. */
  async handle(event: CloudEvent, context: HandleContext): Promise<HandleResult> {
    const started = this.clock.now();
    if (isPoolMode(context)) return this.replacePool(event, context, started);
    const instanceId = instanceIdOf(event);
    if (context.signal.aborted) throw abortReason(context.signal);
    const region = this.regionOf(event);
    const again = (done: RequestedReplacement): HandleResult =>
      this.answer(started, done.strategy, { ...done.outcome, message: `replacement already requested by this process: ${done.outcome.message}` });
    const requested = region.requested.get(instanceId);
    if (requested) return again(requested);
    // Another call (a second flow, a second event) is replacing it now: its outcome is this call's.
    // Looked for again after each wait: when that call failed, another waiter may have taken over.
    for (let pending = region.inFlight.get(instanceId); pending; pending = region.inFlight.get(instanceId)) {
      const done = await untilAborted(pending, context.signal).catch(() => undefined);
      // Gone while waiting: starting now would take the place of the call still in flight, and the next call would not wait for it.
      if (context.signal.aborted) throw abortReason(context.signal);
      if (done?.outcome.status === 'ok') return again(done);
    }
    const work = this.replace(region, instanceId, event, context);
    region.inFlight.set(instanceId, work);
    try {
      const done = await work;
      if (done.outcome.status === 'ok' && done.outcome.attributes.dry_run === undefined) region.requested.set(instanceId, done);
      return this.answer(started, done.strategy, done.outcome);
    } catch (err) {
      throw toPluginError(err, `replacing ${instanceId}`, context.signal);
    } finally {
      if (region.inFlight.get(instanceId) === work) region.inFlight.delete(instanceId);
    }
  }

  private answer(started: number, strategy: string, outcome: ReplacementOutcome): HandleResult {
    return {
      status: outcome.status,
      message: outcome.message,
      attributes: { ...outcome.attributes, strategy, duration_ms: String(Math.round(this.clock.now() - started)) },
    };
  }

  /** Pool mode (the flow's config `mode: pool`): see {@link replacePool}. A resolution is skipped. */
  private async replacePool(event: CloudEvent, context: HandleContext, started: number): Promise<HandleResult> {
    if (event.type.endsWith(RESOLVED)) {
      return this.answer(started, POOL_STRATEGY, { status: 'skipped', message: `${event.type}: nothing to replace (the drain plugin stops its drain)`, attributes: {} });
    }
    const settings = poolSettings(context, this.options.pool ?? {});
    if (context.signal.aborted) throw abortReason(context.signal);
    const region = this.regionOf(event);
    try {
      const pool = await poolOfEvent(event, region.lookup, context.signal);
      const outcome = await replacePool(
        {
          region,
          settings,
          fleet: { instanceTypes: this.options.instanceTypes, onDemandFallback: this.options.onDemandFallback ?? true },
          dryRun: this.options.dryRun ?? false,
          logger: this.logger,
          clock: this.clock,
          replyMarginMs: this.options.replyMarginMs ?? 1_000,
        },
        pool,
        event,
        context,
      );
      return this.answer(started, POOL_STRATEGY, outcome);
    } catch (err) {
      throw located(toPluginError(err, `replacing the pool of event ${event.id}`, context.signal), `pool mode, event ${event.id}, in ${regionNote(region)}`);
    }
  }

  /** Looks the instance up and replaces it by its strategy; an AWS failure names the instance, its group and the region. */
  private async replace(region: RegionalReplacer, instanceId: string, event: CloudEvent, context: HandleContext): Promise<RequestedReplacement> {
    let instance: InstanceInfo | undefined;
    try {
      instance = await region.lookup.lookup(instanceId, context.signal);
      const strategy = strategyFor(this.options.strategy ?? 'auto', instance);
      const outcome: ReplacementOutcome =
        strategy === 'asg-detach'
          ? await this.detach(region, instance, event, context)
          : await replaceWithFleet(
              { clients: region.clients, instance, signal: context.signal, dryRun: this.options.dryRun ?? false, logger: this.logger, spentTokens: region.spentTokens },
              { instanceTypes: this.options.instanceTypes, onDemandFallback: this.options.onDemandFallback ?? true },
            );
      return { strategy, outcome };
    } catch (err) {
      throw located(toPluginError(err, `replacing ${instanceId}`, context.signal), `replacing ${instanceId}${groupNote(instance)} in ${regionNote(region)}`);
    }
  }

  /**
   * Shuts the handler down, after the gRPC server has drained its calls: a
   * MinSize restore still running for a detach batch whose callers have gone
   * is finished first (10 s at most), then the SDK clients' connections are
   * released. Detaches still queued are answered UNAVAILABLE.
   */
  async close(): Promise<void> {
    const regions = [...this.regions.values()];
    this.regions.clear();
    await Promise.all(regions.map((region) => region.close()));
  }

  private detach(region: RegionalReplacer, instance: InstanceInfo, event: CloudEvent, context: HandleContext): Promise<ReplacementOutcome> {
    const group = instance.group?.name ?? instance.tags[DETACHED_FROM_TAG];
    if (group === undefined) return Promise.resolve(notAMember(instance));
    const releaseHooks = (this.options.completeLifecycleHooks ?? 'always') === 'always' || labelsOf(event).pods_remaining === '0';
    return region.detacher(group).detach({ instance, releaseHooks, signal: context.signal, deadline: context.deadline });
  }

  /** The replacer of the event's `labels.region`, or of the configured region when the label is missing or empty. */
  private regionOf(event: CloudEvent): RegionalReplacer {
    const region = regionLabelOf(event) ?? this.options.region;
    const key = region ?? '';
    let regional = this.regions.get(key);
    if (!regional) {
      const o = this.options;
      regional = new RegionalReplacer({
        region,
        endpoint: o.endpoint,
        credentials: o.credentials,
        retry: o.retry ?? {},
        maxSockets: o.maxSockets ?? 128,
        logger: this.logger,
        dryRun: o.dryRun ?? false,
        coalesceMs: o.coalesceMs ?? 25,
        rememberMs: o.rememberMs ?? 120_000,
        clock: this.clock,
        detachConcurrency: o.detachConcurrency ?? 4,
        replyMarginMs: o.replyMarginMs ?? 1_000,
      });
      this.regions.set(key, regional);
    }
    return regional;
  }
}
