import { DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { callAws } from './aws-call.js';
import type { AwsClients } from './aws-clients.js';

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
  /** Its Auto Scaling group membership, when it has one now. */
  readonly group: { readonly name: string; readonly lifecycleState: string } | undefined;
}

/** Looks the instance up in EC2 and in Auto Scaling, both at once. */
export async function lookupInstance(clients: AwsClients, instanceId: string, signal: AbortSignal): Promise<InstanceInfo> {
  const [described, membership] = await Promise.all([
    callAws('EC2 DescribeInstances', signal, (o) => clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }), o)),
    callAws('Auto Scaling DescribeAutoScalingInstances', signal, (o) =>
      clients.autoScaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }), o),
    ),
  ]);
  const instance = described.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  if (!instance?.InstanceType) throw new PluginError(Code.NotFound, `EC2 DescribeInstances does not know instance ${instanceId}`);
  const tags = Object.fromEntries((instance.Tags ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']])));
  const templateId = tags['aws:ec2launchtemplate:id'];
  const asg = membership.AutoScalingInstances?.find((i) => i.InstanceId === instanceId);
  return {
    instanceId,
    instanceType: instance.InstanceType,
    availabilityZone: instance.Placement?.AvailabilityZone,
    subnetId: instance.SubnetId,
    state: instance.State?.Name,
    capacityType: instance.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    launchTemplate: templateId ? { id: templateId, version: tags['aws:ec2launchtemplate:version'] ?? '$Default' } : undefined,
    tags,
    group: asg?.AutoScalingGroupName ? { name: asg.AutoScalingGroupName, lifecycleState: asg.LifecycleState ?? 'InService' } : undefined,
  };
}
