import { jsonLogger, systemClock } from '@hollowtrees/grpcplugin';
import { startAwsStandIn, type AwsStandIn } from '@hollowtrees/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegionalReplacer } from './regional-replacer.js';

// RegionalReplacer against the Auto Scaling stand-in: what it keeps per group.

let aws: AwsStandIn;
let region: RegionalReplacer;
beforeEach(async () => {
  aws = await startAwsStandIn();
  region = new RegionalReplacer({
    region: 'us-east-1',
    endpoint: aws.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    retry: { maxAttempts: 1 },
    maxSockets: 8,
    logger: jsonLogger({ service: 'test', level: 'silent' }),
    dryRun: false,
    coalesceMs: 5,
    rememberMs: 0,
    detachConcurrency: 4,
    replyMarginMs: 200,
    clock: systemClock,
  });
});
afterEach(async () => {
  await region.close();
  await aws.close();
});

describe('RegionalReplacer', () => {
  it('keeps no detacher per group ever seen: groups replaced by new ones (a node group recreated on upgrade) do not pile up', async () => {
    for (let i = 0; i < 5; i++) {
      const name = `workers-${i}`;
      const group = aws.autoScaling.addGroup({ name, desiredCapacity: 1, minSize: 0 });
      const [id] = group.members.keys();
      const instance = await region.lookup.lookup(id!, new AbortController().signal);
      const outcome = await region.detacher(name).detach({ instance, releaseHooks: false, signal: new AbortController().signal, deadline: undefined });
      expect(outcome).toMatchObject({ status: 'ok', attributes: { auto_scaling_group: name } });
    }
    expect(region.detacherGroups).toEqual(['workers-4']);
  });
});
