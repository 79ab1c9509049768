import { AutoScalingClient, DescribeAutoScalingGroupsCommand, DescribeLifecycleHooksCommand } from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsRateLimiter, awsLikeRateLimits, type RateLimitPolicy } from './rate-limits.js';
import { startAwsStandIn, type AwsStandIn } from './index.js';

describe('AwsRateLimiter', () => {
  it('serves a bucket’s capacity at once, then what it refills, and answers the rest with the service’s throttling error', () => {
    let now = 0;
    const limiter = new AwsRateLimiter(() => ({ bucket: 'b', limit: { capacity: 3, refillPerSecond: 2 } }), () => now);
    const served = (n: number): number => Array.from({ length: n }, () => limiter.take('ec2', 'DescribeInstances')).filter((e) => e === undefined).length;
    expect(served(5)).toBe(3);
    now += 1_000;
    expect(served(5)).toBe(2);
    // Never more than the capacity, however long it waited.
    now += 60_000;
    expect(served(10)).toBe(3);
    expect(limiter.take('ec2', 'DescribeInstances')).toMatchObject({ code: 'RequestLimitExceeded', status: 503 });
    expect(limiter.take('autoscaling', 'DescribeAutoScalingGroups')).toMatchObject({ code: 'Throttling', status: 400, message: 'Rate exceeded' });
    expect(limiter.throttled()).toEqual({ b: 14 });
  });

  it('is shaped like AWS: EC2 has a bucket per action, Auto Scaling one for all its actions', () => {
    const now = 0;
    const limiter = new AwsRateLimiter(awsLikeRateLimits, () => now);
    const servedOf = (service: 'ec2' | 'autoscaling', action: string, n: number): number =>
      Array.from({ length: n }, () => limiter.take(service, action)).filter((e) => e === undefined).length;
    expect(servedOf('ec2', 'DescribeInstances', 150)).toBe(100);
    // Another EC2 action is not affected by DescribeInstances' empty bucket; a mutating one has a smaller bucket.
    expect(servedOf('ec2', 'CreateTags', 80)).toBe(50);
    expect(servedOf('autoscaling', 'DescribeAutoScalingGroups', 30)).toBe(30);
    expect(servedOf('autoscaling', 'DetachInstances', 30)).toBe(10);
    expect(limiter.throttled()).toEqual({ 'ec2:DescribeInstances': 50, 'ec2:CreateTags': 30, autoscaling: 20 });
  });
});

describe('a rate-limited stand-in', () => {
  let aws: AwsStandIn | undefined;
  const clients: Array<{ destroy(): void }> = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await aws?.close();
  });

  it('throttles so that the real SDK clients classify the answer as throttling', async () => {
    // Two calls per bucket, nothing refilled within the test.
    const policy: RateLimitPolicy = (service, action) => ({ bucket: service === 'ec2' ? `ec2:${action}` : 'autoscaling', limit: { capacity: 2, refillPerSecond: 0.001 } });
    aws = await startAwsStandIn({ rateLimits: policy });
    aws.autoScaling.addGroup({ name: 'workers' });
    const errorTypes: string[] = [];
    // A strategy that records how the SDK classified each failure, and never retries.
    const retryStrategy = {
      acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
      refreshRetryTokenForRetry: async (_token: unknown, info: { errorType: string }) => {
        errorTypes.push(info.errorType);
        throw new Error('no retry');
      },
      recordSuccess: () => undefined,
    };
    const config = { region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, retryStrategy };
    const ec2 = new EC2Client(config);
    const autoScaling = new AutoScalingClient(config);
    clients.push(ec2, autoScaling);

    await ec2.send(new DescribeInstancesCommand({}));
    await ec2.send(new DescribeInstancesCommand({}));
    await expect(ec2.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });
    // CreateTags has its own bucket: DescribeInstances' does not hold it up.
    const instance = aws.ec2.addInstance();
    await ec2.send(new CreateTagsCommand({ Resources: [instance.instanceId], Tags: [{ Key: 'a', Value: 'b' }] }));

    // Auto Scaling's actions share one bucket.
    await autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    await autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: 'workers' }));
    await expect(autoScaling.send(new DescribeAutoScalingGroupsCommand({}))).rejects.toMatchObject({ name: 'Throttling', message: 'Rate exceeded' });

    expect(errorTypes).toEqual(['THROTTLING', 'THROTTLING']);
    expect(aws.rateLimiter?.throttled()).toEqual({ 'ec2:DescribeInstances': 1, autoscaling: 1 });
    expect(aws.calls.filter((c) => c.errorCode !== undefined).map((c) => [c.action, c.errorCode])).toEqual([
      ['DescribeInstances', 'RequestLimitExceeded'],
      ['DescribeAutoScalingGroups', 'Throttling'],
    ]);
  });

  it('adds its latency to every call, settable while it runs', async () => {
    aws = await startAwsStandIn({ latencyMs: 40 });
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    clients.push(ec2);
    const timed = async (): Promise<number> => {
      const started = performance.now();
      await ec2.send(new DescribeInstancesCommand({}));
      return performance.now() - started;
    };
    // A timer never fires early; the margin is the clock's rounding.
    expect(await timed()).toBeGreaterThanOrEqual(39);
    aws.latency.set(120);
    expect(await timed()).toBeGreaterThanOrEqual(119);
    expect(aws.calls).toHaveLength(2);
    expect(aws.calls[1]!.at).toBeGreaterThan(aws.calls[0]!.at + 119);
  });
});
