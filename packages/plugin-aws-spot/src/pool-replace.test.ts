import { Code, PluginClient, PluginError, serve, type CloudEvent, type HandleContext } from '@hollowtrees/grpcplugin';
import { awsLikeRateLimits, rejectionOf, startAwsStandIn, type AwsStandIn, type Ec2Instance } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AwsSpotReplaceHandler, type AwsSpotReplaceOptions } from './replace-handler.js';

// Pool mode (issue 19): the pool us-east-1a/m5.large surges; its spot instances get
// replacements in other pools before the drain, through the real SDK against the stand-in.

const REPLACES = 'hollowtrees:replaces';
const TEMPLATE = { id: 'lt-0web', version: '3' };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function standIn(options: Parameters<typeof startAwsStandIn>[0] = {}): Promise<AwsStandIn> {
  const aws = await startAwsStandIn(options);
  cleanups.push(() => aws.close());
  aws.ec2.subnets.set('subnet-a', 'us-east-1a');
  aws.ec2.subnets.set('subnet-b', 'us-east-1b');
  return aws;
}

function handler(aws: AwsStandIn, options: AwsSpotReplaceOptions = {}): AwsSpotReplaceHandler {
  const h = new AwsSpotReplaceHandler({
    region: 'us-east-1',
    endpoint: aws.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    retry: { baseDelayMs: 1, throttlingBaseDelayMs: 5, maxDelayMs: 20 },
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    ...options,
    pool: { pollIntervalMs: 20, subnets: ['subnet-b'], ...options.pool },
  });
  cleanups.push(() => h.close());
  return h;
}

/** A call in pool mode, with the flow's config as core sends it. */
function poolCall(config: Record<string, string> = {}, init: { timeoutMs?: number; attempt?: number } = {}): HandleContext {
  return {
    flow: 'spot-price-surge',
    attempt: init.attempt ?? 1,
    deadline: init.timeoutMs === undefined ? undefined : new Date(Date.now() + init.timeoutMs),
    signal: init.timeoutMs === undefined ? new AbortController().signal : AbortSignal.timeout(init.timeoutMs),
    config: { mode: 'pool', ...config },
  };
}

const surge = (id = 'surge-1', labels: Record<string, string> = { availability_zone: 'us-east-1a', instance_type: 'm5.large' }): CloudEvent => ({
  id,
  source: 'urn:hollowtrees:spot-price',
  specversion: '1.0',
  type: 'aws.ec2.spot.price-surge',
  data: { labels: { region: 'us-east-1', price: '0.2', threshold: '0.1', ...labels } },
});

/** `n` spot m5.large of the cluster in us-east-1a: the surging pool. */
function surgingPool(aws: AwsStandIn, n: number): Ec2Instance[] {
  return Array.from({ length: n }, (_, i) =>
    aws.ec2.addInstance({ instanceType: 'm5.large', subnetId: 'subnet-a', launchTemplate: TEMPLATE, tags: { cluster: 'prod', Name: `web-${i}` } }),
  );
}

/** Instances of other pools, and of the pool but not of the cluster or not spot: none is replaced. */
function otherPools(aws: AwsStandIn): Ec2Instance[] {
  return [
    aws.ec2.addInstance({ instanceType: 'm5.large', subnetId: 'subnet-b', launchTemplate: TEMPLATE, tags: { cluster: 'prod' } }),
    aws.ec2.addInstance({ instanceType: 'm5a.large', subnetId: 'subnet-a', launchTemplate: TEMPLATE, tags: { cluster: 'prod' } }),
    aws.ec2.addInstance({ instanceType: 'm5.large', subnetId: 'subnet-a', lifecycle: 'on-demand', launchTemplate: TEMPLATE, tags: { cluster: 'prod' } }),
    aws.ec2.addInstance({ instanceType: 'm5.large', subnetId: 'subnet-a', launchTemplate: TEMPLATE, tags: { cluster: 'staging' } }),
    aws.ec2.addInstance({ instanceType: 'm5.large', subnetId: 'subnet-a', state: 'stopped', launchTemplate: TEMPLATE, tags: { cluster: 'prod' } }),
  ];
}

const replacements = (aws: AwsStandIn): Ec2Instance[] => aws.ec2.instancesTagged(REPLACES);
const inPool = (i: Ec2Instance): boolean => i.availabilityZone === 'us-east-1a' && i.instanceType === 'm5.large';

describe('pool mode: replacement before drain', () => {
  it('replaces the 5 spot instances of the surging pool with 5 outside it, and answers only once all 5 are running', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 300;
    aws.ec2.subnets.set('subnet-c', 'us-east-1c');
    const pool = surgingPool(aws, 5);
    const others = otherPools(aws);
    const h = handler(aws, { pool: { tag: 'cluster=prod' } });

    let stateWhenAnswered: string[] = [];
    const result = await h.handle(surge(), poolCall()).then((r) => {
      stateWhenAnswered = replacements(aws).map((i) => i.state);
      return r;
    });

    expect(result).toMatchObject({
      status: 'ok',
      message: '5 replacements running for the 5 spot instances of pool us-east-1a/m5.large (5 requested now, 0 earlier)',
      attributes: { pool: 'us-east-1a/m5.large', instances: '5', replacements_requested: '5', replacements_existing: '0', replacements_running: '5', strategy: 'pool-fleet' },
    });
    const launched = replacements(aws);
    expect(launched.map((i) => i.tags[REPLACES]).sort()).toEqual(pool.map((i) => i.instanceId).sort());
    expect(launched.filter(inPool)).toEqual([]);
    // Every one was running when the call answered, and had been pending for the launch delay.
    expect(stateWhenAnswered).toEqual(['running', 'running', 'running', 'running', 'running']);
    for (const i of launched) expect(i.runningAt!.getTime() - i.launchTime.getTime()).toBeGreaterThanOrEqual(290);
    // No fleet may launch into the pool: neither m5.large in us-east-1a's subnet, and the other pools are left alone.
    for (const call of aws.callsTo('CreateFleet')) {
      const overrides = Object.entries(call.params).filter(([k]) => /^LaunchTemplateConfigs\.1\.Overrides\.\d+\.InstanceType$/.test(k));
      for (const [key, type] of overrides) {
        const subnet = call.params[key.replace('InstanceType', 'SubnetId')];
        expect(type === 'm5.large' && subnet === 'subnet-a', `${type} in ${subnet}`).toBe(false);
      }
      const places = overrides.map(([key, type]) => `${type}@${call.params[key.replace('InstanceType', 'SubnetId')]}`);
      // Other types in the old instance's subnet, every type in the other zone's, each once; never subnet-c, which no one named.
      expect(places).toEqual(expect.arrayContaining(['m5a.large@subnet-a', 'm5.large@subnet-b', 'm5a.large@subnet-b']));
      expect(new Set(places).size).toBe(places.length);
      expect(places.filter((p) => p.endsWith('@subnet-c'))).toEqual([]);
    }
    for (const other of others) expect(aws.ec2.instancesTagged(REPLACES, other.instanceId)).toEqual([]);
    // The replacements carry the cluster's tags, so they join it.
    expect(launched.every((i) => i.tags.cluster === 'prod')).toBe(true);
  });

  it('finds a pool larger than one DescribeInstances page', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 0;
    surgingPool(aws, 12);
    const result = await handler(aws, { pool: { pageSize: 5 } }).handle(surge(), poolCall());
    expect(result.attributes).toMatchObject({ instances: '12', replacements_requested: '12', replacements_running: '12' });
    const listing = aws.callsTo('DescribeInstances').filter((c) => Object.values(c.params).includes('instance-lifecycle'));
    expect(listing.map((c) => c.params.NextToken !== undefined)).toEqual([false, true, true]);
  });

  it('answers UNAVAILABLE, launching nothing, when DescribeInstances hands out a NextToken it gave before, instead of listing the page for ever', async () => {
    const aws = await standIn();
    surgingPool(aws, 12);
    aws.faults.repeatNextToken(5, { action: 'DescribeInstances' });
    const err = await rejectionOf(handler(aws, { pool: { pageSize: 5 } }).handle(surge(), poolCall()), PluginError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/^EC2 DescribeInstances: page 2 gave a NextToken an earlier page gave \(.+\): the listing would never end$/);
    expect(aws.callsTo('CreateFleet')).toEqual([]);
  });

  it('answers UNAVAILABLE when the replacements are not running within waitTimeout, and the retry launches none again', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 60_000;
    surgingPool(aws, 5);
    const err = await rejectionOf(handler(aws).handle(surge(), poolCall({ waitTimeout: '200ms' })), PluginError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/^0 of 5 replacements for pool us-east-1a\/m5\.large running after \d+ ms \(5 requested now, 0 earlier\): the drain waits/);
    expect(Number(/after (\d+) ms/.exec(err.message)?.[1])).toBeLessThan(60_000);
    expect(replacements(aws)).toHaveLength(5);

    // Core's retry, in a restarted plugin (nothing remembered in memory): it finds the 5 by their tag.
    for (const i of replacements(aws)) i.state = 'running';
    const retried = await handler(aws).handle(surge(), poolCall({ waitTimeout: '200ms' }, { attempt: 2 }));
    expect(retried.attributes).toMatchObject({ replacements_requested: '0', replacements_existing: '5', replacements_running: '5' });
    // A second event about the same pool launches nothing either.
    const again = await handler(aws).handle(surge('surge-2'), poolCall());
    expect(again.attributes).toMatchObject({ replacements_requested: '0', replacements_existing: '5' });
    expect(replacements(aws)).toHaveLength(5);
    expect(aws.ec2.fleets).toHaveLength(5);
  });

  it('answers before the call’s deadline, by the reply margin, when that comes before waitTimeout', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 60_000;
    surgingPool(aws, 2);
    const err = await rejectionOf(handler(aws, { replyMarginMs: 500 }).handle(surge(), poolCall({}, { timeoutMs: 2_000 })), PluginError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/0 of 2 replacements/);
  });

  it('lets two calls about one pool at once launch one replacement per instance', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 50;
    surgingPool(aws, 5);
    aws.latency.set(30);
    const h = handler(aws);
    const [a, b] = await Promise.all([h.handle(surge('surge-a'), poolCall()), h.handle(surge('surge-b'), poolCall())]);
    expect([a.status, b.status]).toEqual(['ok', 'ok']);
    expect(replacements(aws)).toHaveLength(5);
    expect(aws.ec2.fleets).toHaveLength(5);
  });

  it('does not launch a second replacement for a member another call of the process replaced after this call read the pool\'s replacements: an interruption warning\'s, or another pool call\'s', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 20;
    const [one, two] = surgingPool(aws, 2) as [Ec2Instance, Ec2Instance];
    const h = handler(aws, { pool: { fleetConcurrency: 1 } });
    const held = (action: string): { hits: () => number; letGo: () => void } => {
      let letGo = (): void => {};
      const fault = aws.faults.hold(1, new Promise<void>((resolve) => (letGo = resolve)), { action });
      cleanups.push(() => letGo());
      return { hits: () => fault.hits, letGo: () => letGo() };
    };
    // A surge's pool call has read the replacements (none) and launches for the first member EC2 listed (held there).
    const fleet = held('CreateFleet');
    const surgeCall = h.handle(surge('surge-a'), poolCall());
    await vi.waitFor(() => expect(fleet.hits()).toBe(1), { timeout: 5_000, interval: 5 });
    const other = two;
    // Meanwhile the other member's interruption warning is replaced by a per-instance call.
    const warning: CloudEvent = { id: `warning-${other.instanceId}`, source: 'aws.ec2', specversion: '1.0', type: 'aws.ec2.spot.interruption-warning', data: { labels: { region: 'us-east-1', instance_id: other.instanceId } } };
    expect((await h.handle(warning, { ...poolCall(), config: {} })).status).toBe('ok');
    // A second pool call (another rebalance recommendation of the pool) reads the replacements while the first waits,
    // and is itself held (its DescribeSubnets) until the first has launched for both members.
    const subnets = held('DescribeSubnets');
    const secondCall = h.handle(surge('surge-b'), poolCall());
    await vi.waitFor(() => expect(subnets.hits()).toBe(1), { timeout: 5_000, interval: 5 });
    fleet.letGo();
    expect((await surgeCall).status).toBe('ok');
    subnets.letGo();
    expect((await secondCall).status).toBe('ok');
    // Before: the first call launched again for `other`, and the second for both members.
    for (const member of [one, two]) expect(aws.ec2.instancesTagged(REPLACES, member.instanceId), member.instanceId).toHaveLength(1);
  });

  it('launches one replacement per instance when two replicas racing with one event were told its subnets in different orders (EC2 keeps none)', async () => {
    const aws = await standIn();
    aws.ec2.subnets.set('subnet-c', 'us-east-1c');
    aws.ec2.launchDelayMs = 20;
    surgingPool(aws, 1);
    // Each DescribeSubnets lists them in the other order from the one before.
    const actions = aws.ec2.actions as Record<string, (params: never) => Record<string, unknown>>;
    const real = actions.DescribeSubnets!;
    let flip = false;
    actions.DescribeSubnets = (params) => {
      const out = real(params) as { subnetSet: { item: unknown[] } };
      if ((flip = !flip)) out.subnetSet.item.reverse();
      return out;
    };
    // Two processes (within one, the second would share the first's launch); 100 ms on every call makes both look before either launches.
    aws.latency.set(100);
    const config = { subnets: 'subnet-b,subnet-c' };
    const [a, b] = await Promise.all([handler(aws).handle(surge(), poolCall(config)), handler(aws).handle(surge(), poolCall(config))]);
    expect([a.status, b.status]).toEqual(['ok', 'ok']);
    expect(replacements(aws)).toHaveLength(1);
  });

  it('rides out EC2 throttling (the AWS-like rate limits and throttled CreateFleet and DescribeInstances) without duplicates', async () => {
    const aws = await standIn({ rateLimits: awsLikeRateLimits });
    aws.ec2.launchDelayMs = 20;
    surgingPool(aws, 5);
    aws.faults.throttle(3, { action: 'CreateFleet' });
    aws.faults.throttle(2, { action: 'DescribeInstances' });
    const result = await handler(aws).handle(surge(), poolCall());
    expect(result.attributes).toMatchObject({ replacements_requested: '5', replacements_running: '5' });
    expect(aws.callsTo('CreateFleet').filter((c) => c.errorCode !== undefined).length).toBeGreaterThanOrEqual(3);
    expect(replacements(aws)).toHaveLength(5);
  });

  it('replaces a pool larger than EC2’s CreateFleet bucket once per instance, over core’s retries of the throttled call', async () => {
    const aws = await standIn({ rateLimits: awsLikeRateLimits });
    aws.ec2.launchDelayMs = 0;
    surgingPool(aws, 60);
    const h = handler(aws, { pool: { fleetConcurrency: 8 } });
    const codes: Code[] = [];
    // Core retries a retryable answer (RESOURCE_EXHAUSTED here), after a backoff.
    for (let attempt = 1; attempt <= 40; attempt++) {
      const outcome = await h.handle(surge(), poolCall({}, { attempt })).then(
        () => undefined,
        (err: PluginError) => err,
      );
      if (outcome === undefined) break;
      codes.push(outcome.code);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes)).toEqual(new Set([Code.ResourceExhausted]));
    expect(replacements(aws)).toHaveLength(60);
    expect(new Set(replacements(aws).map((i) => i.tags[REPLACES])).size).toBe(60);
    expect(aws.rateLimiter!.throttled()['ec2:CreateFleet']).toBeGreaterThan(0);
  });

  it('keeps at most fleetConcurrency CreateFleet calls in flight', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 0;
    aws.latency.set(50);
    surgingPool(aws, 6);
    await handler(aws, { pool: { fleetConcurrency: 2 } }).handle(surge(), poolCall());
    // Served 50 ms after it came: at most 2 at once means 3 rounds of 2, at least 100 ms from the first to the last.
    const at = aws.callsTo('CreateFleet').map((c) => c.at);
    expect(at).toHaveLength(6);
    expect(Math.max(...at) - Math.min(...at)).toBeGreaterThanOrEqual(95);
  });

  it('answers UNAVAILABLE at once, naming it, when a replacement is gone before it ran', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 60_000;
    surgingPool(aws, 3);
    const call = rejectionOf(handler(aws).handle(surge(), poolCall()), PluginError);
    await vi.waitFor(() => expect(replacements(aws)).toHaveLength(3), { timeout: 5_000, interval: 10 });
    const [reclaimed] = replacements(aws);
    reclaimed!.state = 'terminated';
    const err = await call;
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toContain(`gone: ${reclaimed!.instanceId} (terminated)`);
  });

  it('core’s retry after "a replacement is gone before it ran" (UNAVAILABLE) launches a new one for it, and none for the others', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 60_000;
    const members = surgingPool(aws, 2);
    // One process: the retry comes to the one that launched the replacement now gone, and remembers it.
    const h = handler(aws);
    const first = rejectionOf(h.handle(surge(), poolCall({}, { timeoutMs: 3_000 })), PluginError);
    await vi.waitFor(() => expect(replacements(aws)).toHaveLength(2), { timeout: 5_000, interval: 10 });
    const reclaimed = replacements(aws).find((i) => i.tags[REPLACES] === members[0]!.instanceId)!;
    reclaimed.state = 'terminated';
    expect((await first).code).toBe(Code.Unavailable);
    for (const i of replacements(aws)) if (i !== reclaimed) i.state = 'running';
    aws.ec2.launchDelayMs = 50;
    const retried = await h.handle(surge(), poolCall({}, { timeoutMs: 3_000, attempt: 2 }));
    expect(retried.attributes).toMatchObject({ replacements_requested: '1', replacements_existing: '1', replacements_running: '2' });
    const live = (member: Ec2Instance): Ec2Instance[] => replacements(aws).filter((i) => i.tags[REPLACES] === member.instanceId && i.state !== 'terminated');
    expect(members.map((m) => live(m).length)).toEqual([1, 1]);
    // The retry's fleet has a token of its own: the first one's would give the dead replacement back.
    const tokens = aws.callsTo('CreateFleet').map((c) => c.params.ClientToken);
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(3);
  });

  it('in dry-run checks every fleet request with DryRun, launches nothing and does not wait', async () => {
    const aws = await standIn();
    surgingPool(aws, 3);
    const result = await handler(aws, { dryRun: true }).handle(surge(), poolCall());
    expect(result).toMatchObject({ status: 'ok', message: 'dry run: EC2 would launch 3 replacements for pool us-east-1a/m5.large', attributes: { dry_run: 'true', instances: '3' } });
    expect(aws.callsTo('CreateFleet').map((c) => [c.params.DryRun, c.errorCode])).toEqual(Array(3).fill(['true', 'DryRunOperation']));
    expect(aws.ec2.fleets).toEqual([]);
  });

  it('finds the pool of a rebalance recommendation from the instance it names', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 0;
    const [named] = surgingPool(aws, 3);
    const event: CloudEvent = { ...surge('rebalance-1'), type: 'aws.ec2.spot.rebalance-recommendation', data: { labels: { instance_id: named!.instanceId, region: 'us-east-1' } } };
    const result = await handler(aws).handle(event, poolCall());
    expect(result.attributes).toMatchObject({ pool: 'us-east-1a/m5.large', instances: '3', replacements_running: '3' });
  });

  it('skips a resolution without calling AWS (the drain plugin stops the drain)', async () => {
    const aws = await standIn();
    surgingPool(aws, 2);
    const result = await handler(aws).handle({ ...surge(), type: 'aws.ec2.spot.price-surge.resolved' }, poolCall());
    expect(result).toMatchObject({
      status: 'skipped',
      message: 'aws.ec2.spot.price-surge.resolved: nothing to replace (the drain plugin stops its drain)',
      attributes: { strategy: 'pool-fleet' },
    });
    expect(aws.calls).toEqual([]);
  });

  it('answers a call cancelled before it starts CANCELLED, without calling AWS', async () => {
    const aws = await standIn();
    surgingPool(aws, 2);
    const err = await rejectionOf(handler(aws).handle(surge(), { ...poolCall(), signal: AbortSignal.abort() }), PluginError);
    expect(err.code).toBe(Code.Canceled);
    expect(aws.calls).toEqual([]);
  });

  it('does not pass a member’s hollowtrees:detached-from on to its replacement, so the replacement’s own reclaim is replaced', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 0;
    // A former member of workers an earlier interruption flow detached (asg-detach), still running in the pool.
    aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 0, minSize: 0 });
    const [detached] = surgingPool(aws, 1);
    Object.assign(detached!.tags, { 'aws:autoscaling:groupName': 'workers', 'hollowtrees:detached-from': 'workers' });
    const h = handler(aws);
    expect(await h.handle(surge(), poolCall())).toMatchObject({ status: 'ok', attributes: { replacements_running: '1' } });
    const [replacement] = replacements(aws);
    expect(replacement?.tags).toMatchObject({ Name: 'web-0', cluster: 'prod', [REPLACES]: detached!.instanceId });
    expect(replacement?.tags).not.toHaveProperty('hollowtrees:detached-from');

    // Its spot capacity is reclaimed in turn: the per-instance flow must replace it, not take it for a detached member.
    const notice: CloudEvent = { id: 'notice-1', source: 'urn:test', specversion: '1.0', type: 'aws.ec2.spot.interruption', data: { labels: { instance_id: replacement!.instanceId } } };
    const reclaimed = await h.handle(notice, { ...poolCall(), config: {} });
    expect(reclaimed).toMatchObject({ status: 'ok', attributes: { strategy: 'fleet', replacement_instance_id: expect.stringMatching(/^i-/) } });
    expect(aws.ec2.instancesTagged(REPLACES, replacement!.instanceId)).toHaveLength(1);
  });

  it('skips a pool with no spot instance of the cluster', async () => {
    const aws = await standIn();
    surgingPool(aws, 2);
    const result = await handler(aws).handle(surge(), poolCall({ tag: 'cluster=elsewhere' }));
    expect(result).toMatchObject({ status: 'skipped', attributes: { instances: '0' } });
    expect(result.message).toContain('cluster=elsewhere');
    expect(aws.ec2.fleets).toEqual([]);
  });

  it('fails with FAILED_PRECONDITION, launching nothing, when no place outside the pool is left', async () => {
    const aws = await standIn();
    aws.ec2.addInstance({ instanceType: 'x9.large', subnetId: 'subnet-a', launchTemplate: TEMPLATE });
    const err = await rejectionOf(
      handler(aws, { pool: { subnets: [] } }).handle(surge('s', { availability_zone: 'us-east-1a', instance_type: 'x9.large' }), poolCall()),
      PluginError,
    );
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/nowhere to launch a replacement .* outside pool us-east-1a\/x9\.large/);
    expect(aws.ec2.fleets).toEqual([]);
  });

  it('launches for every instance it can, then fails the call with the first failure’s code, so the drain does not start', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 0;
    surgingPool(aws, 2);
    aws.ec2.addInstance({ instanceType: 'm5.large', subnetId: 'subnet-a', tags: { cluster: 'prod' } });
    const err = await rejectionOf(handler(aws).handle(surge(), poolCall()), PluginError);
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/^1 of 3 replacements for pool us-east-1a\/m5\.large could not be requested \(2 were, 0 existed\): i-[0-9a-f]+ was not launched from a launch template /);
    expect(aws.ec2.fleets).toHaveLength(2);
  });

  it('launches the pool’s own type in the other zone when the flow’s config names that zone’s subnet', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 0;
    surgingPool(aws, 2);
    const h = handler(aws, { instanceTypes: ['m5.large'], pool: { subnets: [] } });
    const refused = await rejectionOf(h.handle(surge(), poolCall()), PluginError);
    expect(refused.code).toBe(Code.FailedPrecondition);
    const result = await h.handle(surge(), poolCall({ subnets: 'subnet-a, subnet-b' }));
    expect(result.attributes).toMatchObject({ replacements_requested: '2', replacements_running: '2' });
    expect(replacements(aws).map((i) => [i.instanceType, i.subnetId, i.availabilityZone])).toEqual([
      ['m5.large', 'subnet-b', 'us-east-1b'],
      ['m5.large', 'subnet-b', 'us-east-1b'],
    ]);
  });

  it('names the event and the region when AWS refuses a pool call', async () => {
    const aws = await standIn();
    surgingPool(aws, 1);
    aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, { action: 'DescribeInstances' });
    const err = await rejectionOf(handler(aws).handle(surge(), poolCall()), PluginError);
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toBe('pool mode, event surge-1, in region us-east-1: EC2 DescribeInstances failed: UnauthorizedOperation: You are not authorized to perform this operation.');
  });

  it.each([
    [{ mode: 'pools' }, /config mode "pools" is not one of instance, pool/],
    [{ tag: 'cluster' }, /config tag "cluster" must be key=value/],
    [{ waitTimeout: 'soon' }, /config waitTimeout "soon" is not a duration/],
    // As --pool-wait-timeout: 0 would give up on the replacements it just launched, on every call and retry.
    [{ waitTimeout: '0s' }, /config waitTimeout "0s" must be more than 0/],
    // A typo, or a key of another plugin's entry, would otherwise leave the default in force without a word.
    [{ waitTimout: '20m' }, /config: unknown key "waitTimout" \(it takes mode, tag, subnets, waitTimeout\)$/],
    [{ maxUnavailable: '2', minInterval: '30s' }, /config: unknown key "maxUnavailable", "minInterval" /],
    [{ mode: 'instance', subnets: 'subnet-b' }, /config subnets "subnet-b" applies only with mode: pool$/],
  ])('refuses the flow config %o with INVALID_ARGUMENT', async (config, message) => {
    const aws = await standIn();
    const err = await rejectionOf(handler(aws).handle(surge(), poolCall(config)), PluginError);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^flow spot-price-surge: aws-spot /);
    expect(err.message).toMatch(message);
  });

  it('refuses an event that names no pool with INVALID_ARGUMENT', async () => {
    const aws = await standIn();
    const err = await rejectionOf(handler(aws).handle(surge('s', { availability_zone: 'us-east-1a' }), poolCall()), PluginError);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/names no pool/);
  });

  it('takes mode: pool from the flow’s config served over gRPC; without it the same event is a per-instance call', async () => {
    const aws = await standIn();
    aws.ec2.launchDelayMs = 100;
    surgingPool(aws, 3);
    const server = await serve(0, handler(aws), { host: '127.0.0.1' });
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => client.close());

    const res = await client.handle(surge(), { flow: 'spot-price-surge', config: { mode: 'pool', waitTimeout: '15s' }, timeoutMs: 20_000 });
    expect(res).toMatchObject({ status: 'ok', attributes: { pool: 'us-east-1a/m5.large', instances: '3', replacements_running: '3', strategy: 'pool-fleet' } });
    const perInstance = await rejectionOf(client.handle(surge(), { flow: 'spot-replace', timeoutMs: 20_000 }), PluginError);
    expect(perInstance.code).toBe(Code.InvalidArgument);
    expect(perInstance.message).toMatch(/has no labels.instance_id/);
  });
});
