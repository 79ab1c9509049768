import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { readEveryPage } from '@hollowtrees/grpcplugin/without-grpc';

/** One Spot pool: an instance type in an Availability Zone. */
export interface SpotPool {
  readonly instanceType: string;
  readonly availabilityZone: string;
}

/** A pool's key in maps: type and zone. */
export const poolKey = (pool: SpotPool): string => `${pool.instanceType}@${pool.availabilityZone}`;

/** Every configured type in every configured zone. */
export function configuredPools(instanceTypes: readonly string[], availabilityZones: readonly string[]): SpotPool[] {
  return instanceTypes.flatMap((instanceType) => availabilityZones.map((availabilityZone) => ({ instanceType, availabilityZone })));
}

/**
 * The pools of the pending and running spot instances carrying all `tags`
 * (DescribeInstances, every page), each once.
 */
export async function discoverPools(client: EC2Client, tags: Readonly<Record<string, string>>, signal: AbortSignal): Promise<SpotPool[]> {
  const found = new Map<string, SpotPool>();
  const Filters = [
    ...Object.entries(tags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
    { Name: 'instance-state-name', Values: ['pending', 'running'] },
  ];
  await readEveryPage({
    name: 'DescribeInstances',
    read: (NextToken) => client.send(new DescribeInstancesCommand({ Filters, ...(NextToken ? { NextToken } : {}) }), { abortSignal: signal }),
    nextToken: (page) => page.NextToken,
    take: (page) => {
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        // Real EC2 sets InstanceLifecycle only on spot (and scheduled) instances: on-demand capacity has no Spot price.
        const instanceType = instance.InstanceType;
        const availabilityZone = instance.Placement?.AvailabilityZone;
        if (instance.InstanceLifecycle !== 'spot' || !instanceType || !availabilityZone) continue;
        const pool = { instanceType, availabilityZone };
        found.set(poolKey(pool), pool);
      }
    },
  });
  return [...found.values()];
}
