import { CallLatency } from '../call-latency.js';
import { AutoScalingStandIn } from './autoscaling-stand-in.js';
import { Ec2StandIn } from './ec2-stand-in.js';
import { AwsFaults, startQueryServer, type AwsCall, type AwsService } from './query-server.js';
import { AwsRateLimiter, type RateLimitPolicy } from './rate-limits.js';

export { AwsApiError, throttlingError, type InjectedFault, type QueryService } from './aws-api-error.js';
export { startSqsStandIn, SqsQueue, md5Hex, type RedrivePolicy, type SqsMessage, type SqsQueueOptions, type SqsStandIn, type SqsStandInOptions } from './sqs-stand-in.js';
export { AwsRateLimiter, awsLikeRateLimits, type RateLimitPolicy, type RateLimitRule, type TokenBucketLimit } from './rate-limits.js';
export {
  AutoScalingStandIn,
  type AutoScalingGroup,
  type GroupMember,
  type GroupSpec,
  type GroupTag,
  type LifecycleAction,
  type LifecycleHook,
  type LifecycleTransition,
} from './autoscaling-stand-in.js';
export {
  Ec2StandIn,
  type CapacityErrorCode,
  type CapacityType,
  type Ec2Fleet,
  type Ec2Instance,
  type Ec2InstanceState,
  type FleetError,
  type InstanceSpec,
  type LaunchTemplate,
} from './ec2-stand-in.js';
export { SpotPriceHistory, type PricePoint, type SpotPool, type SpotPriceSample } from './spot-price-history.js';
export { AwsFaults, type AwsCall, type AwsService, type FaultScope, type HeldCalls, type HoldStage } from './query-server.js';

/** A running EC2 + Auto Scaling stand-in. */
export interface AwsStandIn {
  /** `http://127.0.0.1:<port>`: the `endpoint` for both the EC2 and the Auto Scaling SDK client. */
  readonly url: string;
  /** Instances, launch templates, fleets, Spot prices. */
  readonly ec2: Ec2StandIn;
  /** Groups, lifecycle hooks and actions. */
  readonly autoScaling: AutoScalingStandIn;
  /** Errors to answer the next calls with. */
  readonly faults: AwsFaults;
  /** The delay added to every call; settable while running. */
  readonly latency: CallLatency;
  /** The rate limiter, when the stand-in was started with one. */
  readonly rateLimiter: AwsRateLimiter | undefined;
  /** Every call received, in order, failed ones included. */
  readonly calls: readonly AwsCall[];
  /** The calls of one action (and service, when given), in order. */
  callsTo(action: string, service?: AwsService): AwsCall[];
  close(): Promise<void>;
}

/** Options for {@link startAwsStandIn}. */
export interface AwsStandInOptions {
  /** Address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Milliseconds added to every call before it is served. Default 0. */
  latencyMs?: number;
  /**
   * Token buckets calls draw from; a call that finds its bucket empty gets the
   * service's throttling answer, e.g. {@link awsLikeRateLimits}. Default: none.
   */
  rateLimits?: RateLimitPolicy;
}

/**
 * Starts an EC2 and Auto Scaling stand-in on an ephemeral port. It speaks the
 * query protocol the AWS SDK v3 clients use (form-encoded POST, XML answers and
 * error bodies shaped as each service returns them), so the real clients talk
 * to it over HTTP:
 *
 * @example
 * ```ts
 * import { EC2Client } from '@aws-sdk/client-ec2';
 * import { startAwsStandIn } from '@hollowtrees/testkit';
 * const aws = await startAwsStandIn();
 * const ec2 = new EC2Client({ region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
 * ```
 */
export async function startAwsStandIn(options: AwsStandInOptions = {}): Promise<AwsStandIn> {
  const ec2 = new Ec2StandIn();
  const autoScaling = new AutoScalingStandIn(ec2);
  const faults = new AwsFaults();
  const calls: AwsCall[] = [];
  const latency = new CallLatency(options.latencyMs ?? 0);
  const rateLimiter = options.rateLimits ? new AwsRateLimiter(options.rateLimits) : undefined;
  const server = await startQueryServer({
    host: options.host ?? '127.0.0.1',
    actions: { ec2: ec2.actions, autoscaling: autoScaling.actions },
    faults,
    calls,
    latency,
    rateLimiter,
  });
  return {
    url: server.url,
    ec2,
    autoScaling,
    faults,
    latency,
    rateLimiter,
    calls,
    callsTo: (action, service) => calls.filter((c) => c.action === action && (service === undefined || c.service === service)),
    close: () => server.close(),
  };
}
