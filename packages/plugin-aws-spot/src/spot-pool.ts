import { Code, labelsOf, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';
import { instanceIdOf } from './instance-id.js';
import type { InstanceLookup } from './instance-lookup.js';

/** A spot capacity pool: one instance type in one availability zone. */
export interface SpotPool {
  readonly availabilityZone: string;
  readonly instanceType: string;
}

/** How a pool is named in answers and logs: `us-east-1a/m5.large`. */
export const poolName = (pool: SpotPool): string => `${pool.availabilityZone}/${pool.instanceType}`;

/**
 * The pool an event is about: its labels `availability_zone` and
 * `instance_type` when it has both (a price surge), else the pool of the
 * instance `labels.instance_id` names (a rebalance recommendation), looked up in EC2.
 * @throws PluginError INVALID_ARGUMENT when the event names neither.
 */
export async function poolOfEvent(event: CloudEvent, lookup: InstanceLookup, signal: AbortSignal): Promise<SpotPool> {
  const labels = labelsOf(event);
  const { availability_zone: availabilityZone, instance_type: instanceType } = labels;
  if (availabilityZone && instanceType) return { availabilityZone, instanceType };
  if (labels.instance_id === undefined || labels.instance_id === '') {
    throw new PluginError(
      Code.InvalidArgument,
      `event ${event.id} (${event.type}) names no pool: pool mode needs labels availability_zone and instance_type, or labels.instance_id`,
    );
  }
  const instance = await lookup.lookup(instanceIdOf(event), signal);
  if (instance.availabilityZone === undefined) {
    throw new PluginError(Code.FailedPrecondition, `EC2 reports no availability zone for ${instance.instanceId}: its pool is unknown`);
  }
  return { availabilityZone: instance.availabilityZone, instanceType: instance.instanceType };
}
