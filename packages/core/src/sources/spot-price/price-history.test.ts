import { EC2Client } from '@aws-sdk/client-ec2';
import { startAwsStandIn, type AwsStandIn, type SpotPool } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { readPriceHistory } from './price-history.js';

let aws: AwsStandIn | undefined;
afterEach(async () => {
  await aws?.close();
  aws = undefined;
});

const m5a: SpotPool = { instanceType: 'm5.large', availabilityZone: 'us-east-1a' };

describe('readPriceHistory', () => {
  it('stops with an error naming the call when EC2 hands out a NextToken it gave before, instead of reading the page again for ever', async () => {
    aws = await startAwsStandIn();
    const now = Date.now();
    // Two pages of 1,000.
    for (let i = 0; i < 1_500; i++) aws.ec2.spotPrices.set(m5a, 0.05, new Date(now - (1_500 - i) * 1_000));
    aws.faults.repeatNextToken(5, { action: 'DescribeSpotPriceHistory' });
    const client = new EC2Client({ region: 'us-east-1', endpoint: aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    try {
      const read = readPriceHistory(client, { pools: [m5a], productDescription: 'Linux/UNIX', from: now - 3_600_000, to: now }, new AbortController().signal);
      await expect(read).rejects.toThrow(/^DescribeSpotPriceHistory: page 2 gave a NextToken an earlier page gave \(.+\): the listing would never end$/);
      expect(aws.callsTo('DescribeSpotPriceHistory')).toHaveLength(2);
    } finally {
      client.destroy();
    }
  });
});
