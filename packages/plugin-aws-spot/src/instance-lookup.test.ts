import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { rejectionOf } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { infoOf, InstanceLookup } from './instance-lookup.js';
import { useAwsStandIn } from './test-support/aws.js';

const fixture = useAwsStandIn();
const signal = () => new AbortController().signal;

describe('infoOf', () => {
  it('keeps the type, zone, subnet, state, capacity type, tags, launch template and group', () => {
    const info = infoOf(
      {
        InstanceId: 'i-0abc',
        InstanceType: 'm5.large',
        Placement: { AvailabilityZone: 'eu-west-1a' },
        SubnetId: 'subnet-1',
        State: { Name: 'running' },
        InstanceLifecycle: 'spot',
        Tags: [{ Key: 'aws:ec2launchtemplate:id', Value: 'lt-1' }, { Key: 'team' }, { Value: 'no key' }],
      },
      'workers',
    );
    expect(info).toEqual({
      instanceId: 'i-0abc',
      instanceType: 'm5.large',
      availabilityZone: 'eu-west-1a',
      subnetId: 'subnet-1',
      state: 'running',
      capacityType: 'spot',
      // A template without its version tag is launched at its default version.
      launchTemplate: { id: 'lt-1', version: '$Default' },
      tags: { 'aws:ec2launchtemplate:id': 'lt-1', team: '' },
      group: { name: 'workers' },
    });
  });

  it('reads an instance without a lifecycle as on-demand, and one without template or group as such', () => {
    expect(infoOf({ InstanceId: 'i-0abc', InstanceType: 'm5.large' }, undefined)).toMatchObject({ capacityType: 'on-demand', launchTemplate: undefined, group: undefined, tags: {} });
    expect(infoOf({ InstanceLifecycle: 'scheduled' }, undefined)).toMatchObject({ instanceId: '', instanceType: '', capacityType: 'on-demand' });
  });
});

describe('InstanceLookup', () => {
  it('describes an instance once for the cache time; asks Auto Scaling only for one without the group tag', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 1, minSize: 0 });
    const [member] = group.members.keys();
    const loner = fixture.aws.ec2.addInstance({ lifecycle: 'on-demand' }).instanceId;
    const lookup = new InstanceLookup(fixture.clients, { windowMs: 5, cacheMs: 60_000 });

    const [a, b] = await Promise.all([lookup.lookup(member!, signal()), lookup.lookup(loner, signal())]);
    expect(a).toMatchObject({ instanceId: member, capacityType: 'spot', group: { name: 'workers' } });
    expect(b).toMatchObject({ instanceId: loner, capacityType: 'on-demand', group: undefined });
    expect(fixture.aws.callsTo('DescribeInstances')).toHaveLength(1);
    // The member carries aws:autoscaling:groupName; only the loner is asked about.
    expect(fixture.aws.callsTo('DescribeAutoScalingInstances').map((c) => c.params['InstanceIds.member.1'])).toEqual([loner]);

    await lookup.lookup(member!, signal());
    expect(fixture.aws.callsTo('DescribeInstances')).toHaveLength(1);
  });

  it('keeps a tag this process put on a cached instance, and nothing for one it never described', async () => {
    const id = fixture.aws.ec2.addInstance().instanceId;
    const lookup = new InstanceLookup(fixture.clients, { windowMs: 5, cacheMs: 60_000 });
    await lookup.lookup(id, signal());
    lookup.tagged(id, 'hollowtrees:detached-from', 'workers');
    expect((await lookup.lookup(id, signal())).tags).toMatchObject({ 'hollowtrees:detached-from': 'workers' });
    lookup.tagged('i-0never', 'k', 'v');
    await expect(lookup.lookup('i-0never', signal())).rejects.toThrow('EC2 DescribeInstances does not know instance i-0never');
  });

  it('fails an unknown instance alone with NOT_FOUND, and names the call that was refused', async () => {
    const id = fixture.aws.ec2.addInstance().instanceId;
    const lookup = new InstanceLookup(fixture.clients, { windowMs: 5, cacheMs: 60_000 });
    const [known, unknown] = await Promise.allSettled([lookup.lookup(id, signal()), lookup.lookup('i-0gone', signal())]);
    expect(known.status).toBe('fulfilled');
    expect(unknown).toMatchObject({ status: 'rejected', reason: { code: Code.NotFound } });

    fixture.aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, { action: 'DescribeInstances' });
    const refused = await rejectionOf(new InstanceLookup(fixture.clients, { windowMs: 5, cacheMs: 0 }).lookup(id, signal()), PluginError);
    expect(refused.code).toBe(Code.PermissionDenied);
    expect(refused.message).toMatch(/^EC2 DescribeInstances failed: /);

    const loner = fixture.aws.ec2.addInstance().instanceId;
    fixture.aws.faults.fail(1, { code: 'AccessDenied', message: 'User is not authorized', status: 403 }, { action: 'DescribeAutoScalingInstances' });
    const membership = await rejectionOf(new InstanceLookup(fixture.clients, { windowMs: 5, cacheMs: 0 }).lookup(loner, signal()), PluginError);
    expect(membership.message).toMatch(/^Auto Scaling DescribeAutoScalingInstances failed: /);
  });
});
