import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DetachInstancesCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateFleetCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  paginateDescribeInstances,
  type _InstanceType,
  type CreateFleetCommandInput,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startAwsStandIn, type AwsStandIn } from './index.js';

let aws: AwsStandIn;
let ec2: EC2Client;
let autoScaling: AutoScalingClient;

beforeEach(async () => {
  aws = await startAwsStandIn();
  // One attempt: these tests look at single answers, not at the SDK's retries.
  const config = { region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 };
  ec2 = new EC2Client(config);
  autoScaling = new AutoScalingClient(config);
});
afterEach(async () => {
  ec2.destroy();
  autoScaling.destroy();
  await aws.close();
});

const failure = (p: Promise<unknown>): Promise<Error & { $metadata: { httpStatusCode?: number; requestId?: string } }> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: Error & { $metadata: { httpStatusCode?: number } }) => err,
  );

const fleetInput = (overrides: _InstanceType[], capacityType: 'spot' | 'on-demand', clientToken?: string): CreateFleetCommandInput => ({
  Type: 'instant',
  ClientToken: clientToken,
  LaunchTemplateConfigs: [
    {
      LaunchTemplateSpecification: { LaunchTemplateId: 'lt-0aaa', Version: '2' },
      Overrides: overrides.map((InstanceType) => ({ InstanceType, SubnetId: 'subnet-1' })),
    },
  ],
  TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: capacityType },
  TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'team', Value: 'infra' }] }],
});

describe('EC2 stand-in', () => {
  it('answers DescribeInstances with reservations, placement, lifecycle and tags', async () => {
    const instance = aws.ec2.addInstance({ instanceType: 'c5.xlarge', launchTemplate: { id: 'lt-0aaa', version: '3' }, tags: { Name: 'web' } });
    aws.ec2.addInstance({ tags: { Name: 'other' } });
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.instanceId] }));
    expect(out.Reservations).toHaveLength(1);
    const found = out.Reservations?.[0]?.Instances?.[0];
    expect(found).toMatchObject({
      InstanceId: instance.instanceId,
      InstanceType: 'c5.xlarge',
      InstanceLifecycle: 'spot',
      State: { Code: 16, Name: 'running' },
      Placement: { AvailabilityZone: 'us-east-1a' },
      SubnetId: 'subnet-0a1b2c3d',
    });
    expect(found?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Name', Value: 'web' },
        { Key: 'aws:ec2launchtemplate:id', Value: 'lt-0aaa' },
        { Key: 'aws:ec2launchtemplate:version', Value: '3' },
      ]),
    );
  });

  it('filters DescribeInstances by tag and state', async () => {
    const tagged = aws.ec2.addInstance({ tags: { 'hollowtrees:replaces': 'i-0123456789abcdef0' } });
    aws.ec2.addInstance({ state: 'terminated', tags: { 'hollowtrees:replaces': 'i-0123456789abcdef0' } });
    const out = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:hollowtrees:replaces', Values: ['i-0123456789abcdef0'] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
    );
    expect(out.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([tagged.instanceId]);
  });

  it('returns EC2 error XML the SDK turns into a named error with the request id', async () => {
    const err = await failure(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })));
    expect(err.name).toBe('InvalidInstanceID.NotFound');
    expect(err.message).toBe("The instance ID 'i-0123456789abcdef0' does not exist");
    expect(err.$metadata.httpStatusCode).toBe(400);
    expect(err.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers DryRun with DryRunOperation (412) and changes nothing', async () => {
    const instance = aws.ec2.addInstance();
    const err = await failure(ec2.send(new CreateTagsCommand({ DryRun: true, Resources: [instance.instanceId], Tags: [{ Key: 'a', Value: 'b' }] })));
    expect(err.name).toBe('DryRunOperation');
    expect(err.$metadata.httpStatusCode).toBe(412);
    expect(instance.tags).toEqual({});
  });

  it('refuses tags in the reserved aws: namespace', async () => {
    const instance = aws.ec2.addInstance();
    const err = await failure(ec2.send(new CreateTagsCommand({ Resources: [instance.instanceId], Tags: [{ Key: 'aws:x', Value: 'b' }] })));
    expect(err.name).toBe('InvalidParameterValue');
  });

  it('launches an instant fleet with tags, and reports capacity errors per override', async () => {
    aws.ec2.addLaunchTemplate({ id: 'lt-0aaa', imageId: 'ami-1' });
    aws.ec2.noSpotCapacity(['m5.large'], 'UnfulfillableCapacity');
    const out = await ec2.send(new CreateFleetCommand(fleetInput(['m5.large', 'm5a.large'], 'spot')));
    expect(out.FleetId).toMatch(/^fleet-/);
    expect(out.Errors).toEqual([
      expect.objectContaining({ ErrorCode: 'UnfulfillableCapacity', Lifecycle: 'spot', LaunchTemplateAndOverrides: expect.objectContaining({ Overrides: expect.objectContaining({ InstanceType: 'm5.large' }) }) }),
    ]);
    expect(out.Instances).toHaveLength(1);
    const launched = out.Instances?.[0];
    expect(launched).toMatchObject({ InstanceType: 'm5a.large', Lifecycle: 'spot' });
    const instance = aws.ec2.instances.get(launched?.InstanceIds?.[0] ?? '');
    expect(instance).toMatchObject({ state: 'pending', lifecycle: 'spot', subnetId: 'subnet-1', imageId: 'ami-1' });
    expect(instance?.tags).toMatchObject({ team: 'infra', 'aws:ec2launchtemplate:id': 'lt-0aaa', 'aws:ec2:fleet-id': out.FleetId });
  });

  it('answers a repeated client token with the first fleet, and a changed request with IdempotentParameterMismatch', async () => {
    aws.ec2.addLaunchTemplate({ id: 'lt-0aaa', imageId: 'ami-1' });
    const first = await ec2.send(new CreateFleetCommand(fleetInput(['m5.large'], 'spot', 'token-1')));
    const again = await ec2.send(new CreateFleetCommand(fleetInput(['m5.large'], 'spot', 'token-1')));
    expect(again.FleetId).toBe(first.FleetId);
    expect(again.Instances?.[0]?.InstanceIds).toEqual(first.Instances?.[0]?.InstanceIds);
    expect(aws.ec2.instances.size).toBe(1);
    const err = await failure(ec2.send(new CreateFleetCommand(fleetInput(['c5.large'], 'spot', 'token-1'))));
    expect(err.name).toBe('IdempotentParameterMismatch');
  });
});

describe('EC2 stand-in for pool mode (issue 19)', () => {
  it('pages DescribeInstances with MaxResults and NextToken, as the SDK paginator reads them', async () => {
    for (let i = 0; i < 12; i++) aws.ec2.addInstance();
    const pages: number[] = [];
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 5 }, {})) pages.push(page.Reservations?.length ?? 0);
    expect(pages).toEqual([5, 5, 2]);
  });

  it('repeatNextToken: a page asked for with a NextToken answers with that token again, as a broken endpoint would', async () => {
    for (let i = 0; i < 12; i++) aws.ec2.addInstance();
    aws.faults.repeatNextToken(2, { action: 'DescribeInstances' });
    const first = await ec2.send(new DescribeInstancesCommand({ MaxResults: 5 }));
    const again = await ec2.send(new DescribeInstancesCommand({ MaxResults: 5, NextToken: first.NextToken }));
    expect(again.Reservations).toHaveLength(5);
    expect(again.NextToken).toBe(first.NextToken);
    // The faults are used up: the listing goes on.
    const next = await ec2.send(new DescribeInstancesCommand({ MaxResults: 5, NextToken: first.NextToken }));
    expect(next.NextToken).toBeTruthy();
    expect(next.NextToken).not.toBe(first.NextToken);
  });

  it('refuses MaxResults out of 5..1000, and with instance ids', async () => {
    const { instanceId } = aws.ec2.addInstance();
    expect((await failure(ec2.send(new DescribeInstancesCommand({ MaxResults: 4 })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new DescribeInstancesCommand({ MaxResults: 5, InstanceIds: [instanceId] })))).name).toBe('InvalidParameterCombination');
  });

  it('filters by instance-lifecycle: spot instances have it, on-demand ones none', async () => {
    const spot = aws.ec2.addInstance({ lifecycle: 'spot' });
    aws.ec2.addInstance({ lifecycle: 'on-demand' });
    const out = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-lifecycle', Values: ['spot'] }] }));
    expect(out.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([spot.instanceId]);
  });

  it('knows the zone of each subnet: DescribeSubnets, and an instance launched into a subnet is in its zone', async () => {
    aws.ec2.subnets.set('subnet-b', 'us-east-1b');
    aws.ec2.addInstance({ subnetId: 'subnet-a', availabilityZone: 'us-east-1c' });
    const out = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-a', 'subnet-b'] }));
    expect(out.Subnets?.map((s) => [s.SubnetId, s.AvailabilityZone])).toEqual([
      ['subnet-a', 'us-east-1c'],
      ['subnet-b', 'us-east-1b'],
    ]);
    expect(aws.ec2.addInstance({ subnetId: 'subnet-b' }).availabilityZone).toBe('us-east-1b');
    expect((await failure(ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-nope'] })))).name).toBe('InvalidSubnetID.NotFound');
  });

  it('starts what a fleet launched after launchDelayMs: pending first, then running', async () => {
    aws.ec2.addLaunchTemplate({ id: 'lt-0aaa', imageId: 'ami-1' });
    // The answer must reach the test before the launch delay is over, which a stall of a busy machine must not outlast.
    aws.ec2.launchDelayMs = 1_000;
    const out = await ec2.send(new CreateFleetCommand(fleetInput(['m5.large'], 'spot')));
    const instance = aws.ec2.instances.get(out.Instances?.[0]?.InstanceIds?.[0] ?? '')!;
    expect([instance.state, instance.runningAt]).toEqual(['pending', undefined]);
    await vi.waitFor(() => expect(instance.state).toBe('running'), { timeout: 5_000, interval: 10 });
    expect(instance.runningAt!.getTime() - instance.launchTime.getTime()).toBeGreaterThanOrEqual(995);
  });
});

describe('Auto Scaling stand-in', () => {
  it('describes groups, members and hooks in awsQuery XML', async () => {
    const group = aws.autoScaling.addGroup({
      name: 'workers',
      desiredCapacity: 2,
      minSize: 1,
      lifecycleHooks: [{ name: 'drain', transition: 'autoscaling:EC2_INSTANCE_TERMINATING' }],
    });
    const [member] = group.members.keys();
    const instances = await autoScaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [member!] }));
    expect(instances.AutoScalingInstances).toEqual([
      expect.objectContaining({ InstanceId: member, AutoScalingGroupName: 'workers', LifecycleState: 'InService', HealthStatus: 'Healthy' }),
    ]);
    const groups = await autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['workers'] }));
    expect(groups.AutoScalingGroups?.[0]).toMatchObject({ MinSize: 1, MaxSize: 4, DesiredCapacity: 2, AvailabilityZones: ['us-east-1a'] });
    expect(groups.AutoScalingGroups?.[0]?.Instances).toHaveLength(2);
    const hooks = await autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: 'workers' }));
    expect(hooks.LifecycleHooks).toEqual([
      expect.objectContaining({ LifecycleHookName: 'drain', LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING', DefaultResult: 'CONTINUE' }),
    ]);
  });

  it('detaches keeping the desired capacity and launches a replacement', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [member] = group.members.keys();
    const out = await autoScaling.send(
      new DetachInstancesCommand({ AutoScalingGroupName: 'workers', InstanceIds: [member!], ShouldDecrementDesiredCapacity: false }),
    );
    expect(out.Activities?.[0]?.Description).toBe(`Detaching EC2 instance: ${member}`);
    expect(group.desiredCapacity).toBe(2);
    expect(group.members.has(member!)).toBe(false);
    expect(group.members.size).toBe(2);
  });

  it('refuses a detach below MinSize with ValidationError in Auto Scaling error XML', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2 });
    const [member] = group.members.keys();
    const err = await failure(
      autoScaling.send(new DetachInstancesCommand({ AutoScalingGroupName: 'workers', InstanceIds: [member!], ShouldDecrementDesiredCapacity: false })),
    );
    expect(err.name).toBe('ValidationError');
    expect(err.message).toMatch(/below the minimum size of 2/);
    expect(err.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: 'workers', MinSize: 1 }));
    expect(group.minSize).toBe(1);
  });

  it('creates, updates, describes and deletes group tags', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 1, minSize: 0, tags: { team: 'infra' } });
    const tag = (Key: string, Value?: string, PropagateAtLaunch?: boolean) => ({ ResourceId: 'workers', ResourceType: 'auto-scaling-group', Key, Value, PropagateAtLaunch });
    await autoScaling.send(new CreateOrUpdateTagsCommand({ Tags: [tag('hollowtrees:original-min-size', '3', false), tag('env', 'test', true)] }));
    expect(aws.callsTo('CreateOrUpdateTags')[0]?.params).toMatchObject({
      'Tags.member.1.ResourceId': 'workers',
      'Tags.member.1.ResourceType': 'auto-scaling-group',
      'Tags.member.1.Key': 'hollowtrees:original-min-size',
      'Tags.member.1.Value': '3',
      'Tags.member.1.PropagateAtLaunch': 'false',
      'Tags.member.2.PropagateAtLaunch': 'true',
    });
    // An existing key is overwritten, not refused.
    await autoScaling.send(new CreateOrUpdateTagsCommand({ Tags: [tag('team', 'platform', false)] }));
    expect(group.tags).toEqual(
      new Map([
        ['team', { value: 'platform', propagateAtLaunch: false }],
        ['hollowtrees:original-min-size', { value: '3', propagateAtLaunch: false }],
        ['env', { value: 'test', propagateAtLaunch: true }],
      ]),
    );
    const described = await autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['workers'] }));
    expect(described.AutoScalingGroups?.[0]?.Tags).toEqual([
      { ResourceId: 'workers', ResourceType: 'auto-scaling-group', Key: 'team', Value: 'platform', PropagateAtLaunch: false },
      { ResourceId: 'workers', ResourceType: 'auto-scaling-group', Key: 'hollowtrees:original-min-size', Value: '3', PropagateAtLaunch: false },
      { ResourceId: 'workers', ResourceType: 'auto-scaling-group', Key: 'env', Value: 'test', PropagateAtLaunch: true },
    ]);

    // Only tags with PropagateAtLaunch reach the instances launched from now on.
    const [member] = group.members.keys();
    await autoScaling.send(new DetachInstancesCommand({ AutoScalingGroupName: 'workers', InstanceIds: [member!], ShouldDecrementDesiredCapacity: false }));
    const [launched] = group.members.keys();
    const launchedTags = aws.ec2.instances.get(launched!)?.tags ?? {};
    expect(launchedTags).toMatchObject({ env: 'test', 'aws:autoscaling:groupName': 'workers' });
    expect(launchedTags).not.toHaveProperty('team');
    expect(launchedTags).not.toHaveProperty(['hollowtrees:original-min-size']);

    // DeleteTags needs only the key; with a value that is not the tag's, the tag stays.
    await autoScaling.send(new DeleteTagsCommand({ Tags: [tag('hollowtrees:original-min-size', '2'), tag('team')] }));
    expect([...group.tags.keys()]).toEqual(['hollowtrees:original-min-size', 'env']);
    await autoScaling.send(new DeleteTagsCommand({ Tags: [tag('hollowtrees:original-min-size', '3'), tag('no-such-key')] }));
    expect([...group.tags.keys()]).toEqual(['env']);
    expect((await autoScaling.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups?.[0]?.Tags).toHaveLength(1);

    const wrongType = await failure(autoScaling.send(new CreateOrUpdateTagsCommand({ Tags: [{ ...tag('a', 'b'), ResourceType: 'instance' }] })));
    expect(wrongType.name).toBe('ValidationError');
    const noGroup = await failure(autoScaling.send(new DeleteTagsCommand({ Tags: [{ ...tag('env'), ResourceId: 'nope' }] })));
    expect([noGroup.name, noGroup.message]).toEqual(['ValidationError', "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found"]);
    expect(group.tags.size).toBe(1);
  });

  it('refuses more instances in one call than the API takes: 20 for DetachInstances, 50 for DescribeAutoScalingInstances', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 60, minSize: 0, maxSize: 100 });
    const ids = [...group.members.keys()];
    const detach = (n: number) =>
      autoScaling.send(new DetachInstancesCommand({ AutoScalingGroupName: 'workers', InstanceIds: ids.slice(0, n), ShouldDecrementDesiredCapacity: false }));
    const tooMany = await failure(detach(21));
    expect([tooMany.name, tooMany.message]).toEqual([
      'ValidationError',
      "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 20",
    ]);
    expect(group.members.size).toBe(60);
    expect((await detach(20)).Activities).toHaveLength(20);
    const described = (n: number) => autoScaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [...group.members.keys()].slice(0, n) }));
    expect((await failure(described(51))).message).toMatch(/less than or equal to 50$/);
    expect((await described(50)).AutoScalingInstances).toHaveLength(50);
  });

  it('completes a pending lifecycle action, then terminates and replaces the instance', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain', transition: 'autoscaling:EC2_INSTANCE_TERMINATING' }] });
    const [member] = group.members.keys();
    aws.autoScaling.beginTermination(member!);
    const err = await failure(
      autoScaling.send(new DetachInstancesCommand({ AutoScalingGroupName: 'workers', InstanceIds: [member!], ShouldDecrementDesiredCapacity: false })),
    );
    expect(err.message).toBe(`The instance ${member} is not in InService or Standby.`);
    await autoScaling.send(
      new CompleteLifecycleActionCommand({ AutoScalingGroupName: 'workers', LifecycleHookName: 'drain', InstanceId: member!, LifecycleActionResult: 'CONTINUE' }),
    );
    expect(aws.autoScaling.lifecycleActions).toEqual([expect.objectContaining({ instanceId: member, result: 'CONTINUE' })]);
    expect(aws.ec2.instances.get(member!)?.state).toBe('terminated');
    expect(group.members.size).toBe(2);
    const again = await failure(
      autoScaling.send(new CompleteLifecycleActionCommand({ AutoScalingGroupName: 'workers', LifecycleHookName: 'drain', InstanceId: member!, LifecycleActionResult: 'CONTINUE' })),
    );
    expect(again.message).toBe(`No active Lifecycle Action found with instance ID ${member}`);
  });
});

describe('faults', () => {
  it('throttles the next calls with each service’s real error', async () => {
    aws.faults.throttle(1, { service: 'ec2' });
    aws.faults.throttle(1, { service: 'autoscaling' });
    const ec2Err = await failure(ec2.send(new DescribeInstancesCommand({})));
    expect([ec2Err.name, ec2Err.$metadata.httpStatusCode]).toEqual(['RequestLimitExceeded', 503]);
    const asgErr = await failure(autoScaling.send(new DescribeAutoScalingGroupsCommand({})));
    expect([asgErr.name, asgErr.message, asgErr.$metadata.httpStatusCode]).toEqual(['Throttling', 'Rate exceeded', 400]);
    await ec2.send(new DescribeInstancesCommand({}));
    expect(aws.calls.map((c) => c.errorCode)).toEqual(['RequestLimitExceeded', 'Throttling', undefined]);
  });

  it('holds a call, before its action runs, until the test lets it go: a fleet a client gave up on is launched all the same', async () => {
    aws.ec2.addLaunchTemplate({ id: 'lt-0aaa', imageId: 'ami-1' });
    let release = (): void => {};
    const held = aws.faults.hold(1, new Promise<void>((resolve) => (release = resolve)), { action: 'CreateFleet' });
    await ec2.send(new DescribeInstancesCommand({}));
    expect(held.hits).toBe(0);
    const client = new AbortController();
    const cut = ec2.send(new CreateFleetCommand(fleetInput(['m5.large'], 'spot')), { abortSignal: client.signal }).catch((err: unknown) => err);
    await vi.waitFor(() => expect(held.hits).toBe(1), { timeout: 5_000, interval: 5 });
    expect(aws.ec2.instances.size).toBe(0);
    client.abort();
    expect(await cut).toMatchObject({ name: 'AbortError' });
    release();
    await vi.waitFor(() => expect(aws.ec2.instances.size).toBe(1), { timeout: 5_000, interval: 5 });
  });

  it('answers 503 and injected errors for one action', async () => {
    aws.faults.unavailable(1);
    aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, { action: 'CreateTags' });
    expect((await failure(ec2.send(new DescribeInstancesCommand({})))).$metadata.httpStatusCode).toBe(503);
    await ec2.send(new DescribeInstancesCommand({}));
    const instance = aws.ec2.addInstance();
    const err = await failure(ec2.send(new CreateTagsCommand({ Resources: [instance.instanceId], Tags: [{ Key: 'a', Value: 'b' }] })));
    expect([err.name, err.message]).toEqual(['UnauthorizedOperation', 'You are not authorized to perform this operation.']);
  });
});
