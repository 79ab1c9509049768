import { randomUUID } from 'node:crypto';
import { AwsApiError } from './aws-api-error.js';
import type { Ec2Instance, Ec2StandIn } from './ec2-stand-in.js';
import type { QueryParams } from './query-params.js';
import type { ActionHandler } from './query-server.js';

/** The lifecycle transitions a hook can watch. */
export type LifecycleTransition = 'autoscaling:EC2_INSTANCE_LAUNCHING' | 'autoscaling:EC2_INSTANCE_TERMINATING';

/** A lifecycle hook of a group. */
export interface LifecycleHook {
  readonly name: string;
  readonly transition: LifecycleTransition;
  /** Default `CONTINUE`. */
  readonly defaultResult?: 'CONTINUE' | 'ABANDON';
  /** Seconds. Default 3600. */
  readonly heartbeatTimeout?: number;
}

/** An instance's membership of a group. */
export interface GroupMember {
  readonly instanceId: string;
  /** `InService`, `Standby`, `Terminating:Wait`, ... as Auto Scaling spells them. */
  lifecycleState: string;
  healthStatus: 'Healthy' | 'Unhealthy';
}

/** A tag of a group. */
export interface GroupTag {
  value: string;
  /** Whether the group copies it onto the instances it launches from now on. */
  propagateAtLaunch: boolean;
}

/** A group held by the stand-in. Mutable, so tests can arrange and inspect state. */
export interface AutoScalingGroup {
  readonly name: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly subnetId: string;
  readonly launchTemplate: { id: string; version: string };
  readonly members: Map<string, GroupMember>;
  readonly lifecycleHooks: LifecycleHook[];
  /** Tags by key, as CreateOrUpdateTags and DeleteTags leave them. */
  readonly tags: Map<string, GroupTag>;
}

/** A lifecycle action: pending until completed with a result. */
export interface LifecycleAction {
  readonly groupName: string;
  readonly hookName: string;
  readonly instanceId: string;
  readonly token: string;
  result: 'CONTINUE' | 'ABANDON' | undefined;
}

/** What {@link AutoScalingStandIn.addGroup} needs. */
export interface GroupSpec {
  name: string;
  /** Instances launched at once. Default 2. */
  desiredCapacity?: number;
  /** Default: `desiredCapacity`. */
  minSize?: number;
  /** Default: `desiredCapacity + 2`. */
  maxSize?: number;
  /** Default `m5.large`. */
  instanceType?: string;
  /** Default `us-east-1a`. */
  availabilityZone?: string;
  /** Default `subnet-0a1b2c3d`. */
  subnetId?: string;
  /** Default `{ id: 'lt-0123456789abcdef0', version: '1' }`. */
  launchTemplate?: { id: string; version: string };
  /** Default none. */
  lifecycleHooks?: LifecycleHook[];
  /** Tags by key, not propagated at launch. Default none. */
  tags?: Readonly<Record<string, string>>;
}

const TERMINATING: LifecycleTransition = 'autoscaling:EC2_INSTANCE_TERMINATING';
const DETACHABLE = new Set(['InService', 'Standby']);
/** The only `ResourceType` a group tag may name. */
const GROUP_RESOURCE_TYPE = 'auto-scaling-group';
/** Auto Scaling's tagging limits, from the user guide. */
const MAX_TAGS_PER_CALL = 25;
const MAX_TAGS_PER_GROUP = 50;
const MAX_KEY_LENGTH = 128;
const MAX_VALUE_LENGTH = 256;
/** Instances one DetachInstances may name, and one DescribeAutoScalingInstances may ask for, per the API reference. */
const MAX_DETACH_IDS = 20;
const MAX_DESCRIBE_IDS = 50;

/** AWS's wording for a list longer than the action takes. */
function tooMany(parameter: string, max: number): AwsApiError {
  return validation(`1 validation error detected: Value at '${parameter}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
}

function validation(message: string): AwsApiError {
  return new AwsApiError('ValidationError', message);
}

/**
 * The Auto Scaling side of the stand-in. Groups launch their instances in the
 * EC2 stand-in (tagged `aws:autoscaling:groupName`) and launch replacements at
 * once whenever fewer members are in service than the desired capacity.
 *
 * DetachInstances follows the user guide: an instance is detachable only when
 * `InService` or `Standby`, and a detach may not leave fewer instances than
 * `MinSize`, even when the desired capacity is kept. One call takes up to 20
 * instances, one DescribeAutoScalingInstances up to 50.
 *
 * Group tags follow the API reference: CreateOrUpdateTags and DeleteTags take
 * `Tags.member.N` with `ResourceId` (the group name), `ResourceType`
 * (`auto-scaling-group`), `Key`, `Value` and `PropagateAtLaunch`; a key that
 * exists is overwritten; DeleteTags needs only the key, and leaves a tag alone
 * when a `Value` is given that is not the tag's. DescribeAutoScalingGroups lists
 * them under `Tags`, and tags with `PropagateAtLaunch` are copied onto the
 * instances the group launches afterwards.
 */
export class AutoScalingStandIn {
  /** Groups by name. */
  readonly groups = new Map<string, AutoScalingGroup>();
  /** Every lifecycle action, pending ones with `result` undefined. */
  readonly lifecycleActions: LifecycleAction[] = [];

  /** The actions served, by name. */
  readonly actions: Readonly<Record<string, ActionHandler>> = {
    DescribeAutoScalingInstances: (p) => this.describeAutoScalingInstances(p),
    DescribeAutoScalingGroups: (p) => this.describeAutoScalingGroups(p),
    DescribeLifecycleHooks: (p) => this.describeLifecycleHooks(p),
    DetachInstances: (p) => this.detachInstances(p),
    CompleteLifecycleAction: (p) => this.completeLifecycleAction(p),
    UpdateAutoScalingGroup: (p) => this.updateAutoScalingGroup(p),
    CreateOrUpdateTags: (p) => this.createOrUpdateTags(p),
    DeleteTags: (p) => this.deleteTags(p),
  };

  constructor(private readonly ec2: Ec2StandIn) {}

  /** Creates a group and launches its desired capacity. */
  addGroup(spec: GroupSpec): AutoScalingGroup {
    const desired = spec.desiredCapacity ?? 2;
    const group: AutoScalingGroup = {
      name: spec.name,
      minSize: spec.minSize ?? desired,
      maxSize: spec.maxSize ?? desired + 2,
      desiredCapacity: desired,
      instanceType: spec.instanceType ?? 'm5.large',
      availabilityZone: spec.availabilityZone ?? 'us-east-1a',
      subnetId: spec.subnetId ?? 'subnet-0a1b2c3d',
      launchTemplate: spec.launchTemplate ?? { id: 'lt-0123456789abcdef0', version: '1' },
      members: new Map(),
      lifecycleHooks: [...(spec.lifecycleHooks ?? [])],
      tags: new Map(Object.entries(spec.tags ?? {}).map(([key, value]) => [key, { value, propagateAtLaunch: false }])),
    };
    this.groups.set(group.name, group);
    this.replenish(group);
    return group;
  }

  /**
   * Starts terminating a member, as a spot interruption does: with termination
   * hooks it waits in `Terminating:Wait` with one pending action per hook;
   * without, it is terminated and replaced at once.
   */
  beginTermination(instanceId: string): LifecycleAction[] {
    const group = this.groupOf(instanceId);
    const member = group.members.get(instanceId)!;
    const hooks = group.lifecycleHooks.filter((h) => h.transition === TERMINATING);
    if (hooks.length === 0) {
      this.terminate(group, instanceId);
      return [];
    }
    member.lifecycleState = 'Terminating:Wait';
    const actions = hooks.map((h) => ({ groupName: group.name, hookName: h.name, instanceId, token: randomUUID(), result: undefined }));
    this.lifecycleActions.push(...actions);
    return actions;
  }

  private group(name: string): AutoScalingGroup {
    const group = this.groups.get(name);
    if (!group) throw validation(`AutoScalingGroup name not found - AutoScalingGroup '${name}' not found`);
    return group;
  }

  private groupOf(instanceId: string): AutoScalingGroup {
    const group = [...this.groups.values()].find((g) => g.members.has(instanceId));
    if (!group) throw validation(`The instance ${instanceId} is not part of any Auto Scaling group.`);
    return group;
  }

  private inService(group: AutoScalingGroup): number {
    return [...group.members.values()].filter((m) => m.lifecycleState === 'InService').length;
  }

  private replenish(group: AutoScalingGroup): void {
    while (group.members.size < group.desiredCapacity) {
      const instance = this.ec2.addInstance({
        instanceType: group.instanceType,
        availabilityZone: group.availabilityZone,
        subnetId: group.subnetId,
        launchTemplate: group.launchTemplate,
      });
      for (const [key, tag] of group.tags) if (tag.propagateAtLaunch) instance.tags[key] = tag.value;
      instance.tags['aws:autoscaling:groupName'] = group.name;
      group.members.set(instance.instanceId, { instanceId: instance.instanceId, lifecycleState: 'InService', healthStatus: 'Healthy' });
    }
  }

  private terminate(group: AutoScalingGroup, instanceId: string): void {
    group.members.delete(instanceId);
    const instance = this.ec2.instances.get(instanceId);
    if (instance) instance.state = 'terminated';
    this.replenish(group);
  }

  private describeAutoScalingInstances(params: QueryParams): Record<string, unknown> {
    const ids = new Set(params.list('InstanceIds.member'));
    if (ids.size > MAX_DESCRIBE_IDS) throw tooMany('instanceIds', MAX_DESCRIBE_IDS);
    const rows = [...this.groups.values()].flatMap((group) =>
      [...group.members.values()]
        .filter((m) => ids.size === 0 || ids.has(m.instanceId))
        .map((m) => ({ InstanceId: m.instanceId, AutoScalingGroupName: group.name, ...this.memberXml(group, m) })),
    );
    return { AutoScalingInstances: { member: rows } };
  }

  private describeAutoScalingGroups(params: QueryParams): Record<string, unknown> {
    const names = params.list('AutoScalingGroupNames.member');
    const groups = [...this.groups.values()].filter((g) => names.length === 0 || names.includes(g.name));
    return {
      AutoScalingGroups: {
        member: groups.map((g) => ({
          AutoScalingGroupName: g.name,
          AutoScalingGroupARN: `arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:${randomUUID()}:autoScalingGroupName/${g.name}`,
          LaunchTemplate: { LaunchTemplateId: g.launchTemplate.id, Version: g.launchTemplate.version },
          MinSize: g.minSize,
          MaxSize: g.maxSize,
          DesiredCapacity: g.desiredCapacity,
          DefaultCooldown: 300,
          AvailabilityZones: { member: [g.availabilityZone] },
          HealthCheckType: 'EC2',
          HealthCheckGracePeriod: 300,
          Instances: { member: [...g.members.values()].map((m) => ({ InstanceId: m.instanceId, ...this.memberXml(g, m) })) },
          CreatedTime: new Date(0).toISOString(),
          VPCZoneIdentifier: g.subnetId,
          Tags: {
            member: [...g.tags].map(([key, tag]) => ({
              ResourceId: g.name,
              ResourceType: GROUP_RESOURCE_TYPE,
              Key: key,
              Value: tag.value,
              PropagateAtLaunch: tag.propagateAtLaunch,
            })),
          },
        })),
      },
    };
  }

  private memberXml(group: AutoScalingGroup, member: GroupMember): Record<string, unknown> {
    return {
      InstanceType: this.ec2.instances.get(member.instanceId)?.instanceType ?? group.instanceType,
      AvailabilityZone: group.availabilityZone,
      LifecycleState: member.lifecycleState,
      HealthStatus: member.healthStatus,
      LaunchTemplate: { LaunchTemplateId: group.launchTemplate.id, Version: group.launchTemplate.version },
      ProtectedFromScaleIn: false,
    };
  }

  private describeLifecycleHooks(params: QueryParams): Record<string, unknown> {
    const group = this.group(params.require('AutoScalingGroupName'));
    const names = params.list('LifecycleHookNames.member');
    const hooks = group.lifecycleHooks.filter((h) => names.length === 0 || names.includes(h.name));
    return {
      LifecycleHooks: {
        member: hooks.map((h) => ({
          LifecycleHookName: h.name,
          AutoScalingGroupName: group.name,
          LifecycleTransition: h.transition,
          HeartbeatTimeout: h.heartbeatTimeout ?? 3600,
          GlobalTimeout: (h.heartbeatTimeout ?? 3600) * 100,
          DefaultResult: h.defaultResult ?? 'CONTINUE',
        })),
      },
    };
  }

  private detachInstances(params: QueryParams): Record<string, unknown> {
    const group = this.group(params.require('AutoScalingGroupName'));
    const decrement = params.require('ShouldDecrementDesiredCapacity') === 'true';
    const ids = params.list('InstanceIds.member');
    if (ids.length > MAX_DETACH_IDS) throw tooMany('instanceIds', MAX_DETACH_IDS);
    for (const id of ids) {
      const member = group.members.get(id);
      if (!member) throw validation(`The instance ${id} is not part of Auto Scaling group ${group.name}.`);
      if (!DETACHABLE.has(member.lifecycleState)) throw validation(`The instance ${id} is not in InService or Standby.`);
    }
    const remaining = this.inService(group) - ids.filter((id) => group.members.get(id)?.lifecycleState === 'InService').length;
    if (remaining < group.minSize) {
      throw validation(
        `Detaching ${ids.length} instance(s) would leave ${remaining} in service, below the minimum size of ${group.minSize} of Auto Scaling group ${group.name}. Decrease the minimum size first.`,
      );
    }
    if (decrement) group.desiredCapacity -= ids.length;
    for (const id of ids) group.members.delete(id);
    this.replenish(group);
    return {
      Activities: {
        member: ids.map((id) => ({
          ActivityId: randomUUID(),
          AutoScalingGroupName: group.name,
          Description: `Detaching EC2 instance: ${id}`,
          Cause: `At ${new Date().toISOString()} instance ${id} was detached in response to a user request${decrement ? ', shrinking the capacity' : ', keeping the capacity'}.`,
          StartTime: new Date().toISOString(),
          StatusCode: 'InProgress',
          Progress: 50,
          Details: JSON.stringify({ 'Subnet ID': group.subnetId, 'Availability Zone': group.availabilityZone }),
        })),
      },
    };
  }

  private completeLifecycleAction(params: QueryParams): Record<string, unknown> {
    const group = this.group(params.require('AutoScalingGroupName'));
    const hookName = params.require('LifecycleHookName');
    const result = params.require('LifecycleActionResult');
    if (result !== 'CONTINUE' && result !== 'ABANDON') throw validation(`Invalid LifecycleActionResult: ${result}`);
    const token = params.get('LifecycleActionToken');
    const instanceId = params.get('InstanceId');
    const action = this.lifecycleActions.find(
      (a) =>
        a.result === undefined &&
        a.groupName === group.name &&
        a.hookName === hookName &&
        (token === undefined || a.token === token) &&
        (instanceId === undefined || a.instanceId === instanceId),
    );
    if (!action) {
      throw validation(token !== undefined ? `No active Lifecycle Action found with token ${token}` : `No active Lifecycle Action found with instance ID ${instanceId ?? ''}`);
    }
    action.result = result;
    const stillPending = this.lifecycleActions.some((a) => a.instanceId === action.instanceId && a.result === undefined);
    if (!stillPending) this.terminate(group, action.instanceId);
    return {};
  }

  private updateAutoScalingGroup(params: QueryParams): Record<string, unknown> {
    const group = this.group(params.require('AutoScalingGroupName'));
    const min = params.int('MinSize') ?? group.minSize;
    const max = params.int('MaxSize') ?? group.maxSize;
    // As documented: a MinSize above the current desired capacity raises it.
    const desired = params.int('DesiredCapacity') ?? Math.max(group.desiredCapacity, min);
    if (min > max || desired < min || desired > max) {
      throw validation(`Desired capacity:${desired} must be between the specified min size:${min} and max size:${max}`);
    }
    Object.assign(group, { minSize: min, maxSize: max, desiredCapacity: desired });
    this.replenish(group);
    return {};
  }

  private createOrUpdateTags(params: QueryParams): Record<string, unknown> {
    const requests = this.tagRequests(params);
    // Checked before anything changes: a refused call tags nothing.
    for (const group of new Set(requests.map((r) => r.group))) {
      const keys = new Set([...group.tags.keys(), ...requests.filter((r) => r.group === group).map((r) => r.key)]);
      if (keys.size > MAX_TAGS_PER_GROUP) {
        throw new AwsApiError('LimitExceeded', `Auto Scaling group ${group.name} would have ${keys.size} tags: the maximum is ${MAX_TAGS_PER_GROUP}.`);
      }
    }
    for (const r of requests) r.group.tags.set(r.key, { value: r.value ?? '', propagateAtLaunch: r.propagateAtLaunch ?? false });
    return {};
  }

  private deleteTags(params: QueryParams): Record<string, unknown> {
    for (const r of this.tagRequests(params)) {
      const tag = r.group.tags.get(r.key);
      if (tag && (r.value === undefined || r.value === tag.value)) r.group.tags.delete(r.key);
    }
    return {};
  }

  /** The `Tags.member.N` of CreateOrUpdateTags and DeleteTags, checked. */
  private tagRequests(params: QueryParams): { group: AutoScalingGroup; key: string; value: string | undefined; propagateAtLaunch: boolean | undefined }[] {
    const structs = params.structs('Tags.member');
    if (structs.length === 0) throw new AwsApiError('MissingParameter', 'The request must contain the parameter Tags');
    if (structs.length > MAX_TAGS_PER_CALL) throw validation(`${structs.length} tags in one call: the maximum is ${MAX_TAGS_PER_CALL}.`);
    return structs.map((tag) => {
      const resourceType = tag.require('ResourceType');
      if (resourceType !== GROUP_RESOURCE_TYPE) throw validation(`Invalid resource type ${resourceType}: the only supported value is ${GROUP_RESOURCE_TYPE}.`);
      const group = this.group(tag.require('ResourceId'));
      const key = tag.require('Key');
      const value = tag.get('Value');
      if (key.length > MAX_KEY_LENGTH) throw validation(`Tag key ${key} is longer than ${MAX_KEY_LENGTH} characters.`);
      if (value !== undefined && value.length > MAX_VALUE_LENGTH) throw validation(`The value of tag ${key} is longer than ${MAX_VALUE_LENGTH} characters.`);
      return { group, key, value, propagateAtLaunch: tag.bool('PropagateAtLaunch') };
    });
  }
}
