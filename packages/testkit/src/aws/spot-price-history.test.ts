import { DescribeSpotPriceHistoryCommand, EC2Client, paginateDescribeSpotPriceHistory, type SpotPrice } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { awsLikeRateLimits, startAwsStandIn, type AwsStandIn, type AwsStandInOptions } from './index.js';

let aws: AwsStandIn;
let ec2: EC2Client;

async function start(options: AwsStandInOptions = {}): Promise<void> {
  aws = await startAwsStandIn(options);
  // One attempt: these tests look at single answers, not at the SDK's retries.
  ec2 = new EC2Client({ region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
}
afterEach(async () => {
  ec2.destroy();
  await aws.close();
});

const MINUTE = 60_000;
const ago = (minutes: number): Date => new Date(Date.now() - minutes * MINUTE);
const m5a = { instanceType: 'm5.large', availabilityZone: 'us-east-1a' };
const m5b = { instanceType: 'm5.large', availabilityZone: 'us-east-1b' };
const c5a = { instanceType: 'c5.xlarge', availabilityZone: 'us-east-1a' };
const brief = (p: SpotPrice): string => `${p.InstanceType}/${p.AvailabilityZone}/${p.ProductDescription}@${p.SpotPrice}`;

describe('EC2 stand-in: DescribeSpotPriceHistory', () => {
  it('answers newest first, with six-decimal prices and the pool of each sample', async () => {
    await start();
    const latest = ago(20);
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.035, at: ago(30) },
      { price: 0.041, at: latest },
    ]);
    aws.ec2.spotPrices.set(c5a, 0.07, ago(25));
    const out = await ec2.send(new DescribeSpotPriceHistoryCommand({}));
    expect(out.SpotPriceHistory?.map(brief)).toEqual(['m5.large/us-east-1a/Linux/UNIX@0.041000', 'c5.xlarge/us-east-1a/Linux/UNIX@0.070000', 'm5.large/us-east-1a/Linux/UNIX@0.035000']);
    expect(out.SpotPriceHistory?.[0]?.Timestamp).toEqual(latest);
    expect(out.NextToken ?? '').toBe('');
  });

  it('filters by InstanceTypes, AvailabilityZone, ProductDescriptions and the Filter names, with wildcards', async () => {
    await start();
    aws.ec2.spotPrices.set(m5a, 0.04, ago(10));
    aws.ec2.spotPrices.set(m5b, 0.05, ago(10));
    aws.ec2.spotPrices.set(c5a, 0.07, ago(10));
    aws.ec2.spotPrices.set({ ...m5a, productDescription: 'Windows' }, 0.2, ago(10));
    const types = (p: Promise<{ SpotPriceHistory?: SpotPrice[] }>): Promise<string[]> => p.then((o) => (o.SpotPriceHistory ?? []).map(brief).sort());
    expect(await types(ec2.send(new DescribeSpotPriceHistoryCommand({ InstanceTypes: ['m5.large'], ProductDescriptions: ['Linux/UNIX'] })))).toEqual([
      'm5.large/us-east-1a/Linux/UNIX@0.040000',
      'm5.large/us-east-1b/Linux/UNIX@0.050000',
    ]);
    expect(await types(ec2.send(new DescribeSpotPriceHistoryCommand({ AvailabilityZone: 'us-east-1a', ProductDescriptions: ['Windows'] })))).toEqual(['m5.large/us-east-1a/Windows@0.200000']);
    expect(
      await types(
        ec2.send(
          new DescribeSpotPriceHistoryCommand({
            Filters: [
              { Name: 'availability-zone', Values: ['us-east-1a'] },
              { Name: 'instance-type', Values: ['c5.*', 'm5.large'] },
              { Name: 'product-description', Values: ['Linux/*'] },
            ],
          }),
        ),
      ),
    ).toEqual(['c5.xlarge/us-east-1a/Linux/UNIX@0.070000', 'm5.large/us-east-1a/Linux/UNIX@0.040000']);
    const bad = await ec2.send(new DescribeSpotPriceHistoryCommand({ Filters: [{ Name: 'instance-family', Values: ['m5'] }] })).catch((err: Error) => err);
    expect(bad).toMatchObject({ name: 'InvalidParameterValue', message: "The filter 'instance-family' is invalid" });
  });

  it('a StartTime/EndTime window holds the changes inside it plus the price in effect at StartTime', async () => {
    await start();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.01, at: ago(120) },
      { price: 0.02, at: ago(90) },
      { price: 0.03, at: ago(30) },
      { price: 0.04, at: ago(5) },
    ]);
    aws.ec2.spotPrices.set(m5b, 0.05, ago(200));
    const out = await ec2.send(new DescribeSpotPriceHistoryCommand({ StartTime: ago(60), EndTime: ago(10) }));
    expect(out.SpotPriceHistory?.map(brief)).toEqual([
      'm5.large/us-east-1a/Linux/UNIX@0.030000',
      // In effect when the window opens: the last change before StartTime, with its own timestamp.
      'm5.large/us-east-1a/Linux/UNIX@0.020000',
      'm5.large/us-east-1b/Linux/UNIX@0.050000',
    ]);
  });

  it('pages by MaxResults and NextToken; a page set meanwhile shifts nothing; a token of another request is refused', async () => {
    await start();
    for (let i = 0; i < 12; i++) aws.ec2.spotPrices.set(m5a, 0.01 * (i + 1), ago(60 - i));
    const first = await ec2.send(new DescribeSpotPriceHistoryCommand({ MaxResults: 5 }));
    expect(first.SpotPriceHistory?.map((p) => p.SpotPrice)).toEqual(['0.120000', '0.110000', '0.100000', '0.090000', '0.080000']);
    // A newer change arrives between pages: the next page goes on where the first ended.
    aws.ec2.spotPrices.set(m5a, 0.5, ago(1));
    const second = await ec2.send(new DescribeSpotPriceHistoryCommand({ MaxResults: 5, NextToken: first.NextToken }));
    expect(second.SpotPriceHistory?.map((p) => p.SpotPrice)).toEqual(['0.070000', '0.060000', '0.050000', '0.040000', '0.030000']);
    const other = await ec2.send(new DescribeSpotPriceHistoryCommand({ MaxResults: 5, NextToken: first.NextToken, InstanceTypes: ['c5.xlarge'] })).catch((err: Error) => err);
    expect(other).toMatchObject({ name: 'InvalidParameterValue' });
    const tooMany = await ec2.send(new DescribeSpotPriceHistoryCommand({ MaxResults: 1001 })).catch((err: Error) => err);
    expect(tooMany).toMatchObject({ name: 'InvalidParameterValue' });

    const all: string[] = [];
    for await (const page of paginateDescribeSpotPriceHistory({ client: ec2, pageSize: 5 }, {})) all.push(...(page.SpotPriceHistory ?? []).map((p) => p.SpotPrice ?? ''));
    expect(all).toHaveLength(13);
    expect(new Set(all).size).toBe(13);
    expect(aws.callsTo('DescribeSpotPriceHistory').filter((c) => c.errorCode === undefined).length).toBeGreaterThanOrEqual(2 + 3);
  });

  it('is throttled like every EC2 Describe action: its own bucket, RequestLimitExceeded when empty', async () => {
    expect(awsLikeRateLimits('ec2', 'DescribeSpotPriceHistory')).toEqual({ bucket: 'ec2:DescribeSpotPriceHistory', limit: awsLikeRateLimits('ec2', 'DescribeInstances')?.limit });
    // A bucket of two that never refills: the third call finds it empty, whatever the machine's speed.
    await start({ rateLimits: (service, action) => (service === 'ec2' && action === 'DescribeSpotPriceHistory' ? { bucket: action, limit: { capacity: 2, refillPerSecond: 0 } } : undefined) });
    aws.ec2.spotPrices.set(m5a, 0.04, ago(1));
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) answers.push(await ec2.send(new DescribeSpotPriceHistoryCommand({})).then(() => 'ok', (err: Error) => err.name));
    expect(answers).toEqual(['ok', 'ok', 'RequestLimitExceeded']);
    expect(aws.rateLimiter?.throttled()).toEqual({ DescribeSpotPriceHistory: 1 });
  });
});
