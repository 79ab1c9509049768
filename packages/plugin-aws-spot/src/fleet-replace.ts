import {
  CreateFleetCommand,
  type _InstanceType,
  type Filter,
  type Instance,
  type CreateFleetCommandInput,
  type CreateFleetError,
} from '@aws-sdk/client-ec2';
import { Code, isRetryable, PluginError } from '@hollowtrees/grpcplugin';
import { callAws, dryRunEc2 } from './aws-call.js';
import { awsErrorCode, grpcCodeFor } from './aws-error.js';
import { clientToken, instanceScope } from './client-token.js';
import { describeInstancesAmong, type DescribeOptions } from './describe-instances.js';
import { siblingInstanceTypes } from './instance-types.js';
import type { InstanceInfo } from './instance-lookup.js';
import type { ReplacementOutcome, StrategyContext } from './replacement-outcome.js';
import { EC2_TAG_LIMIT, REPLACES_TAG, replacementTags } from './tags.js';

/** Fleet settings taken from the handler options. */
export interface FleetSettings {
  readonly instanceTypes: readonly string[] | undefined;
  readonly onDemandFallback: boolean;
}

/** Spot or on-demand. */
export type CapacityType = 'spot' | 'on-demand';

/**
 * Errors that mean "no spot right now", after which on-demand is tried: no capacity, a spot max price
 * (the launch template's) under the spot price, the account's spot instance and spot fleet request
 * quotas. On-demand has none of these limits; a quota is not lifted within a two-minute notice.
 */
const NO_SPOT = new Set(['InsufficientInstanceCapacity', 'UnfulfillableCapacity', 'SpotMaxPriceTooLow', 'MaxSpotInstanceCountExceeded', 'MaxSpotFleetRequestCountExceeded']);

interface LaunchResult {
  readonly instanceId: string | undefined;
  readonly instanceType: string | undefined;
  readonly errors: readonly CreateFleetError[];
  /** Whether EC2 answered with a fleet, which it answers the token with again: a request refused whole is not. */
  readonly spent: boolean;
}

/** One place a replacement may launch: an instance type in a subnet (the old instance's when none is given). */
export interface LaunchPlace {
  readonly instanceType: string;
  readonly subnetId: string | undefined;
}

/** What {@link launchReplacement} launches, and how its requests are told apart. */
export interface LaunchSettings {
  /** The fleet's overrides, in order of preference. */
  readonly places: readonly LaunchPlace[];
  readonly onDemandFallback: boolean;
  /** The CreateFleet client token of the spot and of the on-demand request. */
  readonly clientToken: (capacityType: CapacityType) => string;
}

/**
 * Strategy `fleet`: launch one replacement with an `instant` EC2 Fleet from the
 * instance's launch template (same version, same subnet), diversified over the
 * instance types, spot first with capacity-optimized allocation, then
 * on-demand when spot has none to give. The replacement gets the old instance's
 * tags plus `hollowtrees:replaces=<old id>`.
 *
 * Idempotent twice over: a pending or running instance already tagged as the
 * replacement is returned as it is, and the client token derived from the
 * instance makes EC2 answer a repeated request, for whichever event and from
 * whichever process, with the fleet it already launched. A replacement that is
 * gone since (terminated, stopped) changes the token, so a re-run launches a
 * new one rather than get the dead one back.
 */
export async function replaceWithFleet(ctx: StrategyContext, settings: FleetSettings): Promise<ReplacementOutcome> {
  const { instance } = ctx;
  const found = await findReplacements({ ec2: ctx.clients.ec2, pageSize: 1000, signal: ctx.signal }, [instance.instanceId]);
  const { live, gone } = found.get(instance.instanceId) ?? NONE;
  if (live?.InstanceId !== undefined) {
    return {
      status: 'ok',
      message: `${instance.instanceId} is already replaced by ${live.InstanceId}`,
      attributes: { replacement_instance_id: live.InstanceId },
    };
  }
  return launchReplacement(ctx, {
    places: (settings.instanceTypes ?? siblingInstanceTypes(instance.instanceType)).map((instanceType) => ({ instanceType, subnetId: instance.subnetId })),
    onDemandFallback: settings.onDemandFallback,
    clientToken: (capacityType) => clientToken(instanceScope(instance.instanceId), capacityType, gone),
  });
}

/**
 * Launches one replacement for `ctx.instance` with an `instant` EC2 Fleet from
 * its launch template, over `settings.places`: spot first (capacity-optimized),
 * then on-demand when spot reports it has none to give (see `NO_SPOT`) and the fallback is on. The
 * replacement carries the old instance's tags plus `hollowtrees:replaces=<old id>`.
 * Looks for no earlier replacement: the caller has.
 */
export async function launchReplacement(ctx: StrategyContext, settings: LaunchSettings): Promise<ReplacementOutcome> {
  const { instance } = ctx;
  const template = instance.launchTemplate;
  if (!template) {
    throw new PluginError(
      Code.FailedPrecondition,
      `${instance.instanceId} was not launched from a launch template (no aws:ec2launchtemplate:id tag): the fleet strategy needs one`,
    );
  }
  const { tags, leftOut } = replacementTags(instance);
  const tagNote = leftOut.length === 0 ? '' : ` (tags left out (EC2 takes ${EC2_TAG_LIMIT} a resource): ${leftOut.join(', ')})`;
  if (leftOut.length > 0) {
    ctx.logger.warn(`${instance.instanceId} has more tags than its replacement can carry besides ${REPLACES_TAG}: some are left out`, { instance_id: instance.instanceId, tags_left_out: leftOut });
  }
  const request = (capacityType: CapacityType): CreateFleetCommandInput => ({
    Type: 'instant',
    ClientToken: ctx.spentTokens.current(settings.clientToken(capacityType)),
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: template.id, Version: template.version },
        Overrides: settings.places.map((place) => ({
          // EC2 validates the name; the SDK's union lags behind new instance types.
          InstanceType: place.instanceType as _InstanceType,
          ...(place.subnetId !== undefined && { SubnetId: place.subnetId }),
        })),
      },
    ],
    TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: capacityType },
    ...(capacityType === 'spot'
      ? { SpotOptions: { AllocationStrategy: 'capacity-optimized' } }
      : { OnDemandOptions: { AllocationStrategy: 'lowest-price' } }),
    TagSpecifications: [{ ResourceType: 'instance', Tags: tags }],
  });

  if (ctx.dryRun) {
    await dryRunEc2('EC2 CreateFleet', ctx.signal, (o) => ctx.clients.ec2.send(new CreateFleetCommand({ ...request('spot'), DryRun: true }), o));
    ctx.logger.info('dry run: EC2 accepted the replacement fleet request', { instance_id: instance.instanceId, request: request('spot') });
    return { status: 'ok', message: `dry run: EC2 would launch a spot replacement for ${instance.instanceId}`, attributes: { dry_run: 'true' } };
  }

  /** Asks EC2 for a fleet; `spend` tells that its token, should the fleet be empty, is spent: EC2 would answer it with that empty fleet again, so a retry needs the next one. */
  const launchAs = async (capacityType: CapacityType): Promise<LaunchResult & { spend: () => void }> => {
    const input = request(capacityType);
    const refused = capacityType === 'spot' && settings.onDemandFallback ? refusedForSpot : undefined;
    const result = await launch(ctx, input, refused);
    const spend = (): void => {
      if (!result.instanceId && result.spent) ctx.spentTokens.spend(settings.clientToken(capacityType), input.ClientToken ?? '');
    };
    return { ...result, spend };
  };
  const spotBase = settings.clientToken('spot');
  const resume = settings.onDemandFallback && ctx.spentTokens.onDemandUnanswered(spotBase);
  if (resume) ctx.logger.info('the on-demand fallback of an earlier try got no answer: asking it again, before spot', { instance_id: instance.instanceId });
  const spot = resume ? undefined : await launchAs('spot');
  // Every answer's errors: spot's shortage keeps a run retryable when the on-demand fallback is refused for good (a quota).
  let errors = spot?.errors ?? [];
  /** On-demand after `spot` (undefined: an earlier try's fallback is resumed). */
  const onDemand = async (): Promise<LaunchResult & { spend: () => void }> => {
    if (spot) ctx.logger.info('no spot for the replacement: falling back to on-demand', { instance_id: instance.instanceId, errors: summary(spot.errors) });
    // A refused spot request keeps no answer: until this one is answered, a retry must not ask spot first.
    if (spot && !spot.spent) ctx.spentTokens.setOnDemandUnanswered(spotBase, true);
    const answered = await launchAs('on-demand');
    ctx.spentTokens.setOnDemandUnanswered(spotBase, false);
    errors = [...errors, ...answered.errors];
    // Only once the on-demand request is answered: one that failed may have launched (its answer lost, or still under way
    // when the call gave up), and a retry must then ask both again with the same tokens, getting EC2's empty spot fleet and
    // then this one, not launch a second replacement with a new spot token once spot capacity is back.
    spot?.spend();
    return answered;
  };
  const spotHadNone = spot !== undefined && !spot.instanceId && settings.onDemandFallback && spot.errors.some((e) => NO_SPOT.has(e.ErrorCode ?? ''));
  const result = spot && !spotHadNone ? spot : await onDemand();
  const capacityType: CapacityType = result === spot ? 'spot' : 'on-demand';
  result.spend();
  if (!result.instanceId) throw fleetFailure(instance, errors);
  return {
    status: 'ok',
    message: `launched ${capacityType} ${result.instanceType ?? ''} ${result.instanceId} to replace ${instance.instanceId}${tagNote}`,
    attributes: {
      replacement_instance_id: result.instanceId,
      replacement_capacity_type: capacityType,
      ...(result.instanceType !== undefined && { replacement_instance_type: result.instanceType }),
    },
  };
}

/** The replacements (tagged `hollowtrees:replaces`) of one instance, as EC2 lists them. */
export interface Replacements {
  /** One that is pending or running, if any. */
  readonly live: Instance | undefined;
  /** The ids of those that are not (terminated, stopped): what {@link clientToken} counts as gone. */
  readonly gone: readonly string[];
}

const NONE: Replacements = { live: undefined, gone: [] };

/** The states an instance that is, or will soon be, running is in. */
export const LIVE: Filter = { Name: 'instance-state-name', Values: ['pending', 'running'] };
const LIVE_STATES: ReadonlySet<string | undefined> = new Set(LIVE.Values);

/**
 * The replacements of `instanceIds`, by the id each replaces, in any state:
 * the dead ones count for the client token. (EC2 lists a terminated instance
 * for about an hour.)
 */
export async function findReplacements(options: DescribeOptions, instanceIds: readonly string[]): Promise<Map<string, Replacements>> {
  const found = await describeInstancesAmong(options, [], `tag:${REPLACES_TAG}`, instanceIds);
  const byReplaced = new Map<string, Replacements>();
  for (const i of found) {
    const replaced = i.Tags?.find((t) => t.Key === REPLACES_TAG)?.Value;
    if (replaced === undefined || i.InstanceId === undefined) continue;
    const { live, gone } = byReplaced.get(replaced) ?? NONE;
    byReplaced.set(replaced, LIVE_STATES.has(i.State?.Name) ? { live: live ?? i, gone } : { live, gone: [...gone, i.InstanceId] });
  }
  return byReplaced;
}

/**
 * The spot request refused as a whole (an HTTP 400, not an error inside the answer) for what only spot lacks
 * (see `NO_SPOT`: the spot fleet request quota), as the answer's error it would otherwise be; else undefined.
 * EC2 keeps no answer for a refused request's client token, so it is not spent.
 */
function refusedForSpot(err: PluginError): CreateFleetError | undefined {
  const code = awsErrorCode(err);
  if (code === undefined || !NO_SPOT.has(code)) return undefined;
  return { ErrorCode: code, ErrorMessage: err.cause instanceof Error ? err.cause.message : err.message, Lifecycle: 'spot' };
}

/** One CreateFleet; a refusal that `refused` turns into an error of the answer is answered as a fleet that launched nothing. */
async function launch(ctx: StrategyContext, input: CreateFleetCommandInput, refused?: (err: PluginError) => CreateFleetError | undefined): Promise<LaunchResult> {
  let out;
  try {
    out = await callAws('EC2 CreateFleet', ctx.signal, (o) => ctx.clients.ec2.send(new CreateFleetCommand(input), o));
  } catch (err) {
    const error = err instanceof PluginError ? refused?.(err) : undefined;
    if (error === undefined) throw err;
    return { instanceId: undefined, instanceType: undefined, errors: [error], spent: false };
  }
  const launched = out.Instances?.find((i) => (i.InstanceIds ?? []).length > 0);
  return { instanceId: launched?.InstanceIds?.[0], instanceType: launched?.InstanceType, errors: out.Errors ?? [], spent: true };
}

/** Each error with its type and capacity type: a failure after the on-demand fallback lists the spot and the on-demand errors. */
const summary = (errors: readonly CreateFleetError[]): string =>
  errors
    .map((e) => `${e.LaunchTemplateAndOverrides?.Overrides?.InstanceType ?? '?'}${e.Lifecycle ? ` (${e.Lifecycle})` : ''}: ${e.ErrorCode ?? 'unknown'}: ${e.ErrorMessage ?? ''}`)
    .join('; ');

/**
 * A fleet that launched nothing (named with the old instance's zone, so its
 * region too), with the code of its first error a retry may mend (a capacity
 * shortage, throttling, EC2's InternalError), else of its first error: another
 * place may be one its zone does not offer, an error no retry mends, listed
 * before it. EC2 reports these errors inside a 200 answer, so their codes are
 * mapped without an HTTP status.
 */
function fleetFailure(instance: InstanceInfo, errors: readonly CreateFleetError[]): PluginError {
  const codes = errors.map((e) => (e.ErrorCode === undefined ? Code.Unavailable : grpcCodeFor(e.ErrorCode)));
  const code = codes.find(isRetryable) ?? codes[0] ?? Code.Unavailable;
  return new PluginError(
    code,
    `EC2 CreateFleet launched no replacement for ${instance.instanceId} in ${instance.availabilityZone ?? 'an unknown zone'}: ${errors.length > 0 ? summary(errors) : 'no instance and no error reported'}`,
  );
}
