import { Code, labelsOf, PluginError, type CloudEvent, type EventHandler, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';
import { createAwsClients, type AwsClients, type AwsCredentials } from './aws-clients.js';
import { toPluginError } from './aws-error.js';
import { detachFromGroup } from './asg-detach.js';
import { replaceWithFleet } from './fleet-replace.js';
import { lookupInstance, type InstanceInfo } from './instance-lookup.js';
import { jsonLogger, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { ReplacementOutcome } from './replacement-outcome.js';
import type { RetryOptions } from './retry-strategy.js';
import { AUTO_SCALING_GROUP_TAG, DETACHED_FROM_TAG } from './tags.js';

/**
 * How the reclaimed instance is replaced:
 * - `auto`: `asg-detach` for Auto Scaling group members (present or former), `fleet` otherwise;
 * - `asg-detach`: only group members; anything else fails with FAILED_PRECONDITION;
 * - `fleet`: always an EC2 Fleet, group member or not.
 */
export type ReplacementStrategy = 'auto' | 'asg-detach' | 'fleet';

/** The strategies {@link ReplacementStrategy} allows, for validating input. */
export const REPLACEMENT_STRATEGIES: readonly ReplacementStrategy[] = ['auto', 'asg-detach', 'fleet'];

/** Options for {@link AwsSpotReplaceHandler}; every field has a default. */
export interface AwsSpotReplaceOptions {
  /** Region for events without `labels.region`. Default: the SDK's chain (`AWS_REGION`, profile, IMDS). */
  region?: string;
  /** Endpoint for both EC2 and Auto Scaling, for stand-ins and demos. Default: AWS's regional endpoints. */
  endpoint?: string;
  /** Default: the SDK's default credential chain. */
  credentials?: AwsCredentials;
  /** Default `auto`. */
  strategy?: ReplacementStrategy;
  /** Instance types a fleet replacement may use, in order of preference. Default: the old type, then the same size in sibling families. */
  instanceTypes?: readonly string[];
  /** Launch on-demand when spot has no capacity (InsufficientInstanceCapacity, UnfulfillableCapacity). Default true. */
  onDemandFallback?: boolean;
  /** Check and log instead of acting: EC2 calls carry `DryRun`, Auto Scaling calls are only logged. Default false. */
  dryRun?: boolean;
  /** SDK retries of each AWS call. Default: 4 attempts, 100 ms base backoff, 2 s cap. */
  retry?: RetryOptions;
  /** Default: JSON lines on stderr. */
  logger?: Logger;
  /** Milliseconds clock for `duration_ms`. Default `performance.now`. */
  now?: () => number;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

function instanceIdOf(event: CloudEvent): string {
  const instanceId = labelsOf(event).instance_id;
  if (instanceId === undefined || instanceId === '') {
    throw new PluginError(Code.InvalidArgument, `event ${event.id} (${event.type}) has no labels.instance_id: the AWS spot plugin needs the EC2 instance id`);
  }
  if (!INSTANCE_ID.test(instanceId)) {
    throw new PluginError(Code.InvalidArgument, `event ${event.id}: labels.instance_id "${instanceId}" is not an EC2 instance id (i-...)`);
  }
  return instanceId;
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
 * @example
 * ```ts
 * const handler = new AwsSpotReplaceHandler({ region: 'eu-west-1', strategy: 'auto' });
 * await serve(9001, handler, { handleSignals: true });
 * ```
 */
export class AwsSpotReplaceHandler implements EventHandler {
  private readonly clients = new Map<string, AwsClients>();
  private readonly options: AwsSpotReplaceOptions;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(options: AwsSpotReplaceOptions = {}) {
    this.options = options;
    this.logger = options.logger ?? jsonLogger();
    this.now = options.now ?? (() => performance.now());
  }

  /** Replaces the event's instance; rejects with a {@link PluginError} whose code says whether core should retry. */
  async handle(event: CloudEvent, context: HandleContext): Promise<HandleResult> {
    const started = this.now();
    const instanceId = instanceIdOf(event);
    const clients = this.clientsFor(labelsOf(event).region ?? this.options.region);
    try {
      const instance = await lookupInstance(clients, instanceId, context.signal);
      const strategy = strategyFor(this.options.strategy ?? 'auto', instance);
      const strategyContext = {
        clients,
        instance,
        signal: context.signal,
        dryRun: this.options.dryRun ?? false,
        logger: this.logger,
      };
      const outcome: ReplacementOutcome =
        strategy === 'asg-detach'
          ? await detachFromGroup(strategyContext)
          : await replaceWithFleet(strategyContext, event, {
              instanceTypes: this.options.instanceTypes,
              onDemandFallback: this.options.onDemandFallback ?? true,
            });
      return {
        status: outcome.status,
        message: outcome.message,
        attributes: { ...outcome.attributes, strategy, duration_ms: String(Math.round(this.now() - started)) },
      };
    } catch (err) {
      throw toPluginError(err, `replacing ${instanceId}`, context.signal);
    }
  }

  /** Releases the SDK clients' connections. */
  close(): void {
    for (const clients of this.clients.values()) {
      clients.ec2.destroy();
      clients.autoScaling.destroy();
    }
    this.clients.clear();
  }

  private clientsFor(region: string | undefined): AwsClients {
    const key = region ?? '';
    let clients = this.clients.get(key);
    if (!clients) {
      clients = createAwsClients({ region, endpoint: this.options.endpoint, credentials: this.options.credentials, retry: this.options.retry ?? {} });
      this.clients.set(key, clients);
    }
    return clients;
  }
}
