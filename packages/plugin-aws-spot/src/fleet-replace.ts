import {
  CreateFleetCommand,
  DescribeInstancesCommand,
  type _InstanceType,
  type CreateFleetCommandInput,
  type CreateFleetError,
} from '@aws-sdk/client-ec2';
import { Code, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';
import { callAws, dryRunEc2 } from './aws-call.js';
import { grpcCodeFor } from './aws-error.js';
import { clientToken } from './client-token.js';
import { siblingInstanceTypes } from './instance-types.js';
import type { ReplacementOutcome, StrategyContext } from './replacement-outcome.js';
import { REPLACES_TAG, replacementTags } from './tags.js';

/** Fleet settings taken from the handler options. */
export interface FleetSettings {
  readonly instanceTypes: readonly string[] | undefined;
  readonly onDemandFallback: boolean;
}

type CapacityType = 'spot' | 'on-demand';

/** Per-override errors that mean "no capacity right now", after which on-demand is tried. */
const CAPACITY_SHORTAGE = new Set(['InsufficientInstanceCapacity', 'UnfulfillableCapacity']);

interface LaunchResult {
  readonly instanceId: string | undefined;
  readonly instanceType: string | undefined;
  readonly errors: readonly CreateFleetError[];
}

/**
 * Strategy `fleet`: launch one replacement with an `instant` EC2 Fleet from the
 * instance's launch template (same version, same subnet), diversified over the
 * instance types, spot first with capacity-optimized allocation, then
 * on-demand when spot has no capacity. The replacement gets the old instance's
 * tags plus `hollowtrees:replaces=<old id>`.
 *
 * Idempotent twice over: an instance already tagged as the replacement is
 * returned as it is, and the client token derived from the event makes EC2
 * answer a repeated request with the fleet it already launched.
 */
export async function replaceWithFleet(ctx: StrategyContext, event: CloudEvent, settings: FleetSettings): Promise<ReplacementOutcome> {
  const { instance } = ctx;
  const existing = await findReplacement(ctx);
  if (existing) {
    return {
      status: 'ok',
      message: `${instance.instanceId} is already replaced by ${existing}`,
      attributes: { replacement_instance_id: existing },
    };
  }
  const template = instance.launchTemplate;
  if (!template) {
    throw new PluginError(
      Code.FailedPrecondition,
      `${instance.instanceId} was not launched from a launch template (no aws:ec2launchtemplate:id tag): the fleet strategy needs one`,
    );
  }
  const request = (capacityType: CapacityType): CreateFleetCommandInput => ({
    Type: 'instant',
    ClientToken: clientToken(event, capacityType),
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: template.id, Version: template.version },
        Overrides: (settings.instanceTypes ?? siblingInstanceTypes(instance.instanceType)).map((type) => ({
          // EC2 validates the name; the SDK's union lags behind new instance types.
          InstanceType: type as _InstanceType,
          ...(instance.subnetId !== undefined && { SubnetId: instance.subnetId }),
        })),
      },
    ],
    TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: capacityType },
    ...(capacityType === 'spot'
      ? { SpotOptions: { AllocationStrategy: 'capacity-optimized' } }
      : { OnDemandOptions: { AllocationStrategy: 'lowest-price' } }),
    TagSpecifications: [{ ResourceType: 'instance', Tags: replacementTags(instance) }],
  });

  if (ctx.dryRun) {
    await dryRunEc2('EC2 CreateFleet', ctx.signal, (o) => ctx.clients.ec2.send(new CreateFleetCommand({ ...request('spot'), DryRun: true }), o));
    ctx.logger.info('dry run: EC2 accepted the replacement fleet request', { instance_id: instance.instanceId, request: request('spot') });
    return { status: 'ok', message: `dry run: EC2 would launch a spot replacement for ${instance.instanceId}`, attributes: { dry_run: 'true' } };
  }

  let capacityType: CapacityType = 'spot';
  let result = await launch(ctx, request(capacityType));
  if (!result.instanceId && settings.onDemandFallback && result.errors.some((e) => CAPACITY_SHORTAGE.has(e.ErrorCode ?? ''))) {
    ctx.logger.info('no spot capacity for the replacement: falling back to on-demand', { instance_id: instance.instanceId, errors: summary(result.errors) });
    capacityType = 'on-demand';
    result = await launch(ctx, request(capacityType));
  }
  if (!result.instanceId) throw fleetFailure(instance.instanceId, result.errors);
  return {
    status: 'ok',
    message: `launched ${capacityType} ${result.instanceType ?? ''} ${result.instanceId} to replace ${instance.instanceId}`,
    attributes: {
      replacement_instance_id: result.instanceId,
      replacement_capacity_type: capacityType,
      ...(result.instanceType !== undefined && { replacement_instance_type: result.instanceType }),
    },
  };
}

async function findReplacement({ clients, instance, signal }: StrategyContext): Promise<string | undefined> {
  const found = await callAws('EC2 DescribeInstances', signal, (o) =>
    clients.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${REPLACES_TAG}`, Values: [instance.instanceId] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
      o,
    ),
  );
  return found.Reservations?.flatMap((r) => r.Instances ?? [])[0]?.InstanceId;
}

async function launch(ctx: StrategyContext, input: CreateFleetCommandInput): Promise<LaunchResult> {
  const out = await callAws('EC2 CreateFleet', ctx.signal, (o) => ctx.clients.ec2.send(new CreateFleetCommand(input), o));
  const launched = out.Instances?.find((i) => (i.InstanceIds ?? []).length > 0);
  return { instanceId: launched?.InstanceIds?.[0], instanceType: launched?.InstanceType, errors: out.Errors ?? [] };
}

const summary = (errors: readonly CreateFleetError[]): string =>
  errors.map((e) => `${e.LaunchTemplateAndOverrides?.Overrides?.InstanceType ?? '?'}: ${e.ErrorCode ?? 'unknown'}: ${e.ErrorMessage ?? ''}`).join('; ');

/** A fleet that launched nothing: the code of its first error decides, capacity shortages stay retryable. */
function fleetFailure(instanceId: string, errors: readonly CreateFleetError[]): PluginError {
  const code = errors[0]?.ErrorCode;
  return new PluginError(
    code === undefined ? Code.Unavailable : grpcCodeFor(code),
    `EC2 CreateFleet launched no replacement for ${instanceId}: ${errors.length > 0 ? summary(errors) : 'no instance and no error reported'}`,
  );
}
