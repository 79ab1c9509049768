import { DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { CoalescingBatcher, Code, PluginError, steadyClock } from '@hollowtrees/grpcplugin';
import { timeoutSignal, untilAborted } from './abortable.js';
import { callAws } from './aws-call.js';
import type { AwsClients } from './aws-clients.js';
import { ExpiringMap } from './expiring-map.js';
import { AUTO_SCALING_GROUP_TAG } from './tags.js';

/** What the plugin needs to know about the instance it replaces. */
export interface InstanceInfo {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly availabilityZone: string | undefined;
  readonly subnetId: string | undefined;
  /** EC2's state name: `running`, `shutting-down`, ... */
  readonly state: string | undefined;
  readonly capacityType: 'spot' | 'on-demand';
  /** From the `aws:ec2launchtemplate:*` tags EC2 puts on instances launched from a template. */
  readonly launchTemplate: { readonly id: string; readonly version: string } | undefined;
  readonly tags: Readonly<Record<string, string>>;
  /**
   * The Auto Scaling group it belongs or belonged to: Auto Scaling's own tag
   * on the instance, else DescribeAutoScalingInstances. Whether it is still a
   * member, and in which lifecycle state, is read when it is detached.
   */
  readonly group: { readonly name: string } | undefined;
}

/** How look-ups are batched and kept. */
export interface LookupOptions {
  /** How long a look-up waits for others to share its call. */
  readonly windowMs: number;
  /** How long an instance's description is reused, e.g. by core's retries of a call. */
  readonly cacheMs: number;
}

/** Ids one DescribeInstances asks for (its filter values take up to 200). */
const DESCRIBE_BATCH = 100;
/** Ids one DescribeAutoScalingInstances takes, at most. */
const MEMBERSHIP_BATCH = 50;
/** A batch serves many calls, so it runs on its own clock, not a caller's. */
const BATCH_TIMEOUT_MS = 30_000;

/** What the plugin keeps of an EC2 description; `group` is the instance's Auto Scaling group, when known. */
export function infoOf(instance: Instance, group: string | undefined): InstanceInfo {
  const tags = Object.fromEntries((instance.Tags ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']])));
  const templateId = tags['aws:ec2launchtemplate:id'];
  return {
    instanceId: instance.InstanceId ?? '',
    instanceType: instance.InstanceType ?? '',
    availabilityZone: instance.Placement?.AvailabilityZone,
    subnetId: instance.SubnetId,
    state: instance.State?.Name,
    capacityType: instance.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    launchTemplate: templateId ? { id: templateId, version: tags['aws:ec2launchtemplate:version'] ?? '$Default' } : undefined,
    tags,
    group: group !== undefined ? { name: group } : undefined,
  };
}

/**
 * Looks instances up in EC2, and in Auto Scaling those that carry no group
 * tag, in batches: the look-ups that arrive within `windowMs` share one
 * DescribeInstances (filtered by id, so an unknown id fails alone) and one
 * DescribeAutoScalingInstances. A description is kept for `cacheMs`, so a
 * retried call does not look its instance up again.
 */
export class InstanceLookup {
  private readonly cache: ExpiringMap<string, InstanceInfo>;
  private readonly instances: CoalescingBatcher<string, Instance>;
  private readonly memberships: CoalescingBatcher<string, string | undefined>;

  constructor(
    clients: AwsClients,
    options: LookupOptions,
    now: () => number = () => steadyClock.now(),
  ) {
    this.cache = new ExpiringMap(options.cacheMs, now);
    this.instances = new CoalescingBatcher(async (ids) => {
      const signal = timeoutSignal(BATCH_TIMEOUT_MS, 'EC2 DescribeInstances');
      const described = await callAws('EC2 DescribeInstances', signal, (o) =>
        clients.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [...ids] }] }), o),
      );
      const found = new Map(described.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId, i]));
      // Named in the refusal: an event without labels.region is looked up in the default region, which may not be the instance's.
      const region = ids.every((id) => found.get(id)?.InstanceType) ? undefined : await clients.ec2.config.region();
      return new Map<string, Instance | Error>(
        ids.map((id) => {
          const instance = found.get(id);
          return [id, instance?.InstanceType ? instance : new PluginError(Code.NotFound, `EC2 DescribeInstances does not know instance ${id} in region ${region}`)];
        }),
      );
    }, { windowMs: options.windowMs, maxBatch: DESCRIBE_BATCH });
    this.memberships = new CoalescingBatcher(async (ids) => {
      const signal = timeoutSignal(BATCH_TIMEOUT_MS, 'Auto Scaling DescribeAutoScalingInstances');
      const described = await callAws('Auto Scaling DescribeAutoScalingInstances', signal, (o) =>
        clients.autoScaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [...ids] }), o),
      );
      const groups = new Map(described.AutoScalingInstances?.map((i) => [i.InstanceId, i.AutoScalingGroupName]));
      return new Map(ids.map((id) => [id, groups.get(id)]));
    }, { windowMs: options.windowMs, maxBatch: MEMBERSHIP_BATCH });
  }

  /** The instance, from the cache or its batch; rejects at once when `signal` aborts. */
  lookup(instanceId: string, signal: AbortSignal): Promise<InstanceInfo> {
    const cached = this.cache.get(instanceId);
    if (cached) return Promise.resolve(cached);
    return untilAborted(this.describe(instanceId), signal);
  }

  /** Keeps a tag this process has just put on the instance in what it knows of it. */
  tagged(instanceId: string, key: string, value: string): void {
    const cached = this.cache.get(instanceId);
    if (cached) this.cache.set(instanceId, { ...cached, tags: { ...cached.tags, [key]: value } });
  }

  private async describe(instanceId: string): Promise<InstanceInfo> {
    const instance = await this.instances.get(instanceId);
    const tagged = instance.Tags?.find((t) => t.Key === AUTO_SCALING_GROUP_TAG)?.Value;
    // Auto Scaling tags what it launches and attaches: only an untagged instance needs asking.
    const group = tagged ?? (await this.memberships.get(instanceId));
    const info = infoOf(instance, group);
    this.cache.set(instanceId, info);
    return info;
  }
}
