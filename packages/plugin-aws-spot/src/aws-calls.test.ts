import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { Code, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';
import { rejectionOf } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { dryRunEc2 } from './aws-call.js';
import { describeInstances, describeInstancesAmong } from './describe-instances.js';
import { InstanceLookup } from './instance-lookup.js';
import { poolOfEvent } from './spot-pool.js';
import { useAwsStandIn } from './test-support/aws.js';

// The small AWS call helpers, against the stand-in.

const fixture = useAwsStandIn();
const live = () => new AbortController().signal;

describe('dryRunEc2', () => {
  const tag = (id: string) => (o: { abortSignal: AbortSignal }) =>
    fixture.clients.ec2.send(new CreateTagsCommand({ DryRun: true, Resources: [id], Tags: [{ Key: 'k', Value: 'v' }] }), o);

  it('resolves when EC2 answers DryRunOperation, and changes nothing', async () => {
    const id = fixture.aws.ec2.addInstance().instanceId;
    await dryRunEc2('EC2 CreateTags', live(), tag(id));
    expect(fixture.aws.ec2.instancesTagged('k', 'v')).toHaveLength(0);
  });

  it('rejects any other answer, named after the call', async () => {
    const id = fixture.aws.ec2.addInstance().instanceId;
    fixture.aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, { action: 'CreateTags' });
    const err = await rejectionOf(dryRunEc2('EC2 CreateTags', live(), tag(id)), PluginError);
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/^EC2 CreateTags failed: /);
  });
});

describe('describeInstances', () => {
  it('splits many ids over calls of 100: exactly 100 ids is one call, 101 two', async () => {
    const ids = Array.from({ length: 101 }, () => fixture.aws.ec2.addInstance().instanceId);
    const options = { ec2: fixture.clients.ec2, pageSize: 1000, signal: live() };
    expect(await describeInstancesAmong(options, [], 'instance-id', ids.slice(0, 100))).toHaveLength(100);
    expect(fixture.aws.callsTo('DescribeInstances')).toHaveLength(1);
    expect(await describeInstancesAmong(options, [], 'instance-id', ids)).toHaveLength(101);
    expect(fixture.aws.callsTo('DescribeInstances')).toHaveLength(3);
  });

  it('stops at an aborted signal, and names the call when it fails', async () => {
    fixture.aws.ec2.addInstance();
    const aborted = await rejectionOf(describeInstances({ ec2: fixture.clients.ec2, pageSize: 5, signal: AbortSignal.abort() }, []), PluginError);
    expect(aborted.code).toBe(Code.Canceled);
    expect(fixture.aws.callsTo('DescribeInstances')).toHaveLength(0);

    fixture.aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, { action: 'DescribeInstances' });
    const refused = await rejectionOf(describeInstances({ ec2: fixture.clients.ec2, pageSize: 5, signal: live() }, []), PluginError);
    expect([refused.code, refused.message.startsWith('EC2 DescribeInstances failed: ')]).toEqual([Code.PermissionDenied, true]);
  });
});

describe('poolOfEvent', () => {
  const event = (labels: Record<string, string>): CloudEvent => ({ id: 'e-1', source: 'test', specversion: '1.0', type: 'fixture.aws.ec2.spot.price-surge', data: { labels } });
  const lookup = () => new InstanceLookup(fixture.clients, { windowMs: 1, cacheMs: 0 });

  it('takes the zone and type from the labels, else from the instance the event names', async () => {
    expect(await poolOfEvent(event({ availability_zone: 'eu-west-1a', instance_type: 'm5.large' }), lookup(), live())).toEqual({ availabilityZone: 'eu-west-1a', instanceType: 'm5.large' });
    const id = fixture.aws.ec2.addInstance({ instanceType: 'c5.xlarge', availabilityZone: 'us-east-1b', subnetId: 'subnet-b' }).instanceId;
    expect(await poolOfEvent(event({ instance_id: id }), lookup(), live())).toEqual({ availabilityZone: 'us-east-1b', instanceType: 'c5.xlarge' });
  });

  it('refuses an event that names no pool, an empty instance id included, without asking EC2', async () => {
    for (const labels of [{}, { instance_id: '' }, { availability_zone: 'eu-west-1a' }] as Array<Record<string, string>>) {
      const err = await rejectionOf(poolOfEvent(event(labels), lookup(), live()), PluginError);
      expect([err.code, err.message]).toEqual([
        Code.InvalidArgument,
        'event e-1 (fixture.aws.ec2.spot.price-surge) names no pool: pool mode needs labels availability_zone and instance_type, or labels.instance_id',
      ]);
    }
    expect(fixture.aws.callsTo('DescribeInstances')).toHaveLength(0);
  });
});
