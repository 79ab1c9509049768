import { labelsOf } from '@hollowtrees/grpcplugin';
import { jumpableClock, type JumpableClock } from '@hollowtrees/grpcplugin/testing';
import { pollUntil, startAwsStandIn, type AwsStandIn, type SpotPool } from '@hollowtrees/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../../../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../../../test/support/start-core.js';
import { parseConfig } from '../../config/load-config.js';

// The default credential chain reads these: no profile or instance metadata is looked for.
// Undone after the file: its worker runs other files next (vitest.config.ts, isolate false).
beforeAll(() => {
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
});
afterAll(() => vi.unstubAllEnvs());

let aws: AwsStandIn;
let plugin: RecordingPlugin;
let core: TestCore | undefined;
/** Core's clock in each test: {@link morePolls} moves it to the source's next poll rather than waiting for it. */
let clock: JumpableClock;

afterEach(async () => {
  await core?.close();
  core = undefined;
  await plugin?.close();
  await aws?.close();
});

const SECOND = 1_000;
const MINUTE = 60_000;
const ago = (minutes: number): Date => new Date(Date.now() - minutes * MINUTE);
const m5a: SpotPool = { instanceType: 'm5.large', availabilityZone: 'us-east-1a' };
const m5b: SpotPool = { instanceType: 'm5.large', availabilityZone: 'us-east-1b' };
const c5a: SpotPool = { instanceType: 'c5.xlarge', availabilityZone: 'us-east-1a' };
const c5b: SpotPool = { instanceType: 'c5.xlarge', availabilityZone: 'us-east-1b' };

/** Starts the stand-in and a recording plugin behind one flow that takes both spot-price event types. */
async function startParts(behaviour?: Parameters<typeof startRecordingPlugin>[0]): Promise<void> {
  clock = jumpableClock();
  aws = await startAwsStandIn();
  plugin = await startRecordingPlugin(behaviour);
}

/** The source's pools: m5.large in us-east-1a and us-east-1b, surging above 0.2. */
const BOTH_ZONES_OVER_0_2 = `      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a, us-east-1b]
      maxPrice: 0.2`;

const coreYaml = (source: string, flowExtra = ''): string => `
plugins:
  rec: { type: grpc, address: "${plugin.address}", retry: { attempts: 1 } }
flows:
  spot-price:
    allowedEvents: [aws.ec2.spot.price-surge, aws.ec2.spot.price-surge.resolved]
    runRetry: { attempts: 1 }
    plugins: [rec]
${flowExtra}sources:
  spotPrice:
    - region: us-east-1
      endpoint: ${aws.url}
      interval: 250ms
${source}`;

/** Core on the test's {@link clock}. */
const startCore = (yaml: string): Promise<TestCore> => startTestCore(yaml, { clock });
const polls = (): number => aws.callsTo('DescribeSpotPriceHistory').filter((c) => c.errorCode === undefined && c.params['NextToken'] === undefined).length;
const state = (): string => `${polls()} polls; plugin got ${plugin.calls.length} calls: ${plugin.calls.map((c) => c.event.type).join(', ')}`;
const eventually = (check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> => pollUntil(check, ms, state);
/** The sources' `interval` in {@link coreYaml}. */
const POLL_INTERVAL_MS = 250;
/**
 * Waits until `more` further polls have been answered. Between polls the clock jumps to the end of
 * the source's wait (the first sleep to end, due within an interval), as if that time had gone by:
 * never further, so the clock moves on no faster than the polls.
 */
const morePolls = async (more: number): Promise<void> => {
  const target = polls() + more;
  await eventually(() => {
    const wake = clock.nextWakeIn();
    if (polls() < target && wake !== undefined && wake <= POLL_INTERVAL_MS) clock.jump(wake);
    return polls() >= target;
  });
};
const calls = (type: string): Array<Record<string, string>> => plugin.calls.filter((c) => c.event.type === type).map((c) => labelsOf(c.event));

const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
  const values = (await core!.metrics.registry.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ ...v, name: m.name })));
  return values.find((v) => v.name === name && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
};

const sourceStatus = async (): Promise<Record<string, unknown> | undefined> => {
  const all = (await (await fetch(`${core!.url}/api/v1/status/sources`)).json()) as Array<Record<string, unknown>>;
  return all.find((s) => s['kind'] === 'spot-price');
};

describe('spot-price source', () => {
  it('a surge in one zone is one event, its end one more; the other pools stay quiet and hysteresis holds a price just under the threshold', async () => {
    await startParts();
    for (const pool of [m5a, m5b, c5a, c5b]) aws.ec2.spotPrices.set(pool, 0.05, ago(120));
    core = await startCore(
      coreYaml(`      instanceTypes: [m5.large, c5.xlarge]
      availabilityZones: [us-east-1a, us-east-1b]
      maxPrice: 0.2
      hysteresis: 0.1`),
    );
    await morePolls(2);
    expect(plugin.calls).toHaveLength(0);

    aws.ec2.spotPrices.set(m5a, 0.31);
    await eventually(() => plugin.calls.length >= 1);
    await morePolls(3);
    expect(calls('aws.ec2.spot.price-surge')).toEqual([
      { region: 'us-east-1', availability_zone: 'us-east-1a', instance_type: 'm5.large', product_description: 'Linux/UNIX', price: '0.310000', threshold: '0.200000', threshold_kind: 'absolute' },
    ]);

    // Below the threshold, above threshold × (1 − hysteresis): still the same surge.
    aws.ec2.spotPrices.set(m5a, 0.19);
    await morePolls(3);
    expect(plugin.calls).toHaveLength(1);

    aws.ec2.spotPrices.set(m5a, 0.06);
    await eventually(() => plugin.calls.length >= 2);
    await morePolls(3);
    expect(plugin.calls).toHaveLength(2);
    expect(calls('aws.ec2.spot.price-surge.resolved')).toEqual([{ ...calls('aws.ec2.spot.price-surge')[0], price: '0.060000' }]);
    const [surge, resolved] = plugin.calls.map((c) => c.event);
    expect(resolved!.id).not.toBe(surge!.id);
    // Times compared as instants: the gRPC timestamp does not keep trailing zeros of the milliseconds.
    const data = resolved!.data as { crossedAt: string; resolvedAt: string };
    expect([Date.parse(data.crossedAt), Date.parse(data.resolvedAt)]).toEqual([Date.parse(surge!.time!), Date.parse(resolved!.time!)]);

    expect(await metric('hollowtrees_spot_price_crossings_total', { source: 'spot-price-us-east-1', threshold_kind: 'absolute', edge: 'surge' })).toBe(1);
    expect(await metric('hollowtrees_spot_price_crossings_total', { source: 'spot-price-us-east-1', threshold_kind: 'absolute', edge: 'resolved' })).toBe(1);
    expect(await metric('hollowtrees_spot_price_pools', { source: 'spot-price-us-east-1' })).toBe(4);
    expect(await metric('hollowtrees_spot_price_polls_total', { source: 'spot-price-us-east-1' })).toBeGreaterThanOrEqual(10);
    expect(await sourceStatus()).toMatchObject({ name: 'spot-price-us-east-1', kind: 'spot-price', state: 'running', errors: 0, lastReceiveAt: expect.any(String) as string });
  });

  it('a restart announces a surge still going on with the id it had before', async () => {
    await startParts();
    const crossedAt = ago(30);
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.4, at: crossedAt },
    ]);
    const yaml = (): string =>
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      maxPrice: 0.2`);
    core = await startTestCore(yaml(), { clock });
    await eventually(() => plugin.calls.length >= 1);
    await core.close();
    core = await startTestCore(yaml(), { clock });
    await eventually(() => plugin.calls.length >= 2);
    await morePolls(2);
    expect(plugin.calls.map((c) => c.event.type)).toEqual(['aws.ec2.spot.price-surge', 'aws.ec2.spot.price-surge']);
    expect(plugin.calls[1]!.event.id).toBe(plugin.calls[0]!.event.id);
    expect(Date.parse(plugin.calls[1]!.event.time ?? '')).toBe(crossedAt.getTime());
  });

  /** The stand-ins, a clock to move, and a pool whose price jumped 20 s ago (0.03 to 0.05), watched with a 1 min history and jump window. */
  async function jumpedTwentySecondsAgo(): Promise<{ clock: JumpableClock; yaml: string }> {
    await startParts();
    const t0 = clock.now();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.03, at: new Date(t0 - 10 * MINUTE) },
      { price: 0.05, at: new Date(t0 - 20 * SECOND) },
    ]);
    return {
      clock,
      yaml: coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      history: 1m
      jump: { ratio: 1.5, window: 1m }`),
    };
  }

  it('a jump surge that outlasts the history window is not announced as resolved while the price stays up, and is once it falls back', async () => {
    const { clock, yaml } = await jumpedTwentySecondsAgo();
    core = await startTestCore(yaml, { clock });
    await eventually(() => plugin.calls.length >= 1);
    // The jump sample is the price in effect when the window opens, then older than the window and its level's window too.
    for (const ahead of [45 * SECOND, 5 * MINUTE]) {
      clock.jump(ahead);
      await morePolls(3);
      expect(plugin.calls.map((c) => `${c.event.type} ${labelsOf(c.event)['price']}`)).toEqual(['aws.ec2.spot.price-surge 0.050000']);
    }
    aws.ec2.spotPrices.set(m5a, 0.03, new Date(clock.now()));
    await eventually(() => plugin.calls.length >= 2);
    expect(plugin.calls.map((c) => `${c.event.type} ${labelsOf(c.event)['price']}`)).toEqual(['aws.ec2.spot.price-surge 0.050000', 'aws.ec2.spot.price-surge.resolved 0.030000']);
  });

  it('a restart during a jump surge whose crossing sample left the window announces it with the id it had before', async () => {
    const { clock, yaml } = await jumpedTwentySecondsAgo();
    core = await startTestCore(yaml, { clock });
    await eventually(() => plugin.calls.length >= 1);
    await core.close();
    clock.jump(45 * SECOND);
    core = await startTestCore(yaml, { clock });
    await eventually(() => plugin.calls.length >= 2);
    await morePolls(2);
    expect(plugin.calls.map((c) => c.event.type)).toEqual(['aws.ec2.spot.price-surge', 'aws.ec2.spot.price-surge']);
    expect(plugin.calls[1]!.event.id).toBe(plugin.calls[0]!.event.id);
  });

  it('a restart during a surge whose price moved (still above the threshold) announces it with the id it had before, at one more read per poll', async () => {
    await startParts();
    const t0 = clock.now();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: new Date(t0 - 10 * MINUTE) },
      { price: 0.4, at: new Date(t0 - 50 * SECOND) },
      { price: 0.45, at: new Date(t0 - 45 * SECOND) },
      // Later moves, still above (the stand-in serves them once the clock has passed them): days on, finding the crossing takes several reads back.
      ...Array.from({ length: 30 }, (_, i) => ({ price: 0.4 + (i % 2) * 0.05, at: new Date(t0 + MINUTE + i * 20 * SECOND) })),
    ]);
    const yaml = (): string =>
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      history: 1m
      maxPrice: 0.2`);
    core = await startTestCore(yaml(), { clock });
    await eventually(() => plugin.calls.length >= 1);
    // Restarted when the window opens after the move, then days later: the crossing sample is read back each time.
    for (const [restart, ahead] of [
      [1, 18 * SECOND],
      [2, 3 * 24 * 60 * MINUTE],
    ] as const) {
      await core.close();
      clock.jump(ahead);
      core = await startTestCore(yaml(), { clock });
      await eventually(() => plugin.calls.length >= restart + 1);
    }
    expect(plugin.calls.map((c) => c.event.type)).toEqual(['aws.ec2.spot.price-surge', 'aws.ec2.spot.price-surge', 'aws.ec2.spot.price-surge']);
    expect(new Set(plugin.calls.map((c) => c.event.id)).size).toBe(1);
    // Once the first poll has found how far back to read, each poll reads the window, and once more for the pool in a long surge.
    const reads = (): number => aws.callsTo('DescribeSpotPriceHistory').length;
    const [reads0, polls0] = [reads(), await metric('hollowtrees_spot_price_polls_total')];
    await morePolls(8);
    const [reads1, polls1] = [reads(), await metric('hollowtrees_spot_price_polls_total')];
    expect(Math.abs(reads1 - reads0 - 2 * (polls1 - polls0))).toBeLessThanOrEqual(1);
    expect(plugin.calls).toHaveLength(3);
  });

  it('after a restart, the end of the latest surge in the history is announced again (with its id), the surge itself not', async () => {
    await startParts();
    const resolvedAt = ago(30);
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.4, at: ago(60) },
      { price: 0.05, at: resolvedAt },
    ]);
    core = await startCore(
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      maxPrice: 0.2`),
    );
    await eventually(() => plugin.calls.length >= 1);
    await morePolls(2);
    expect(plugin.calls.map((c) => c.event.type)).toEqual(['aws.ec2.spot.price-surge.resolved']);
    expect(Date.parse(plugin.calls[0]!.event.time ?? '')).toBe(resolvedAt.getTime());
    expect(plugin.calls[0]!.event.data).toMatchObject({ labels: { price: '0.050000', threshold: '0.200000', threshold_kind: 'absolute' } });
  });

  it('after a restart, the end of the latest surge handed in again for a flow that had no room is not run again by a flow that took it and has no cooldown', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    // us-east-1a's surge, still going on, holds the notify flow's one run: it has no room for us-east-1b's end.
    await startParts((_event, context) => (context.flow === 'notify' ? held : undefined));
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.5, at: ago(60) },
    ]);
    aws.ec2.spotPrices.setSeries(m5b, [
      { price: 0.05, at: ago(120) },
      { price: 0.4, at: ago(60) },
      { price: 0.05, at: ago(30) },
    ]);
    core = await startCore(
      coreYaml(
        BOTH_ZONES_OVER_0_2,
        '  notify:\n    allowedEvents: [aws.ec2.spot.price-surge, aws.ec2.spot.price-surge.resolved]\n    concurrency: 1\n    queueSize: 0\n    plugins: [rec]\n',
      ),
    );
    const poolEnds = (): number => plugin.calls.filter((c) => c.flow === 'spot-price' && c.event.type === 'aws.ec2.spot.price-surge.resolved').length;
    try {
      await eventually(() => poolEnds() >= 1);
      await eventually(async () => (await metric('hollowtrees_spot_price_events_refused_total', { source: 'spot-price-us-east-1' })) >= 1);
      await morePolls(4);
      expect(poolEnds()).toBe(1);
    } finally {
      release();
    }
  });

  it('a surge that begins and ends between two polls is not announced, neither its end', async () => {
    await startParts();
    aws.ec2.spotPrices.set(m5a, 0.05, ago(120));
    core = await startCore(
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      maxPrice: 0.2`),
    );
    await morePolls(1);
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.5, at: new Date(Date.now() - 2) },
      { price: 0.05, at: new Date(Date.now() - 1) },
    ]);
    await morePolls(3);
    expect(plugin.calls).toHaveLength(0);
  });

  it('an event the flows cannot take (no room) is announced again at every poll until they take it', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await startParts((_event, _context, index) => (index === 0 ? held : undefined));
    for (const pool of [m5a, m5b]) aws.ec2.spotPrices.set(pool, 0.05, ago(120));
    core = await startCore(
      coreYaml(
        BOTH_ZONES_OVER_0_2,
        // One run at a time and no queue: while the first surge's run is held, the second has no room.
        '    concurrency: 1\n    queueSize: 0\n',
      ),
    );
    await morePolls(1);
    aws.ec2.spotPrices.set(m5a, 0.5);
    aws.ec2.spotPrices.set(m5b, 0.5);
    await eventually(() => plugin.calls.length >= 1);
    await eventually(async () => (await metric('hollowtrees_spot_price_events_refused_total', { source: 'spot-price-us-east-1' })) >= 2);
    expect(await metric('hollowtrees_events_dropped_total', { flow: 'spot-price', reason: 'queue_full' })).toBeGreaterThanOrEqual(2);
    release();
    await eventually(() => plugin.calls.length >= 2);
    await morePolls(2);
    const zones = plugin.calls.map((c) => labelsOf(c.event)['availability_zone']);
    expect(zones.sort()).toEqual(['us-east-1a', 'us-east-1b']);
    expect(await metric('hollowtrees_spot_price_crossings_total', { source: 'spot-price-us-east-1', threshold_kind: 'absolute', edge: 'surge' })).toBe(2);
  });

  /**
   * Two flows on us-east-1a and us-east-1b: the pool flow (`poolFlowKeys` added to it) and a notify flow of one run
   * and no queue, whose run of us-east-1b's surge is held. Then us-east-1a surges: the pool flow runs it (its plugin
   * would cordon the pool), the notify flow has no room for it. Answers how to release the held run, and the pool flow's
   * runs of us-east-1a's surge so far.
   */
  async function surgeOneFlowHasNoRoomFor(poolFlowKeys: string): Promise<{ release: () => void; poolRuns: () => number }> {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await startParts((_event, context) => (context.flow === 'notify' ? held : undefined));
    for (const pool of [m5a, m5b]) aws.ec2.spotPrices.set(pool, 0.05, ago(120));
    core = await startCore(
      coreYaml(
        BOTH_ZONES_OVER_0_2,
        `${poolFlowKeys}  notify:\n    allowedEvents: [aws.ec2.spot.price-surge]\n    concurrency: 1\n    queueSize: 0\n    plugins: [rec]\n`,
      ),
    );
    await morePolls(1);
    aws.ec2.spotPrices.set(m5b, 0.5);
    await eventually(() => plugin.calls.filter((c) => c.flow === 'notify').length === 1);
    aws.ec2.spotPrices.set(m5a, 0.5);
    const poolRuns = (): number => plugin.calls.filter((c) => c.flow === 'spot-price' && c.event.type === 'aws.ec2.spot.price-surge' && labelsOf(c.event)['availability_zone'] === 'us-east-1a').length;
    await eventually(() => poolRuns() >= 1);
    await eventually(async () => (await metric('hollowtrees_spot_price_events_refused_total', { source: 'spot-price-us-east-1' })) >= 1);
    return { release, poolRuns };
  }

  it('a surge one flow acted on while another had no room has its end announced, though the price fell back before that flow took it', async () => {
    const { release, poolRuns } = await surgeOneFlowHasNoRoomFor('    cooldown: 1h\n');
    aws.ec2.spotPrices.set(m5a, 0.05);
    try {
      await eventually(() => calls('aws.ec2.spot.price-surge.resolved').length >= 1);
      await morePolls(2);
      expect(calls('aws.ec2.spot.price-surge.resolved')).toEqual([expect.objectContaining({ availability_zone: 'us-east-1a', price: '0.050000' })]);
      expect(poolRuns()).toBe(1);
    } finally {
      release();
    }
  });

  it('a surge handed in again for a flow that had no room is not run again by a flow that took it and has no cooldown', async () => {
    // The pool flow has no cooldown (the default): once its run ended, only its group's run or cooldown held the surge.
    const { release, poolRuns } = await surgeOneFlowHasNoRoomFor('');
    try {
      // The surge is handed in again at each poll while notify has no room: the pool flow took it at the first.
      await morePolls(4);
      expect(poolRuns()).toBe(1);
    } finally {
      release();
    }
  });

  it('on-demand ratio and jump thresholds: one event per kind, each naming its threshold', async () => {
    await startParts();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.03, at: ago(100) },
      { price: 0.032, at: ago(80) },
      { price: 0.031, at: ago(50) },
    ]);
    aws.ec2.spotPrices.set(m5b, 0.03, ago(100));
    core = await startCore(
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a, us-east-1b]
      onDemandRatio: 0.5
      onDemandPrices: { m5.large: 0.096 }
      jump: { ratio: 1.5, window: 1h }`),
    );
    await morePolls(2);
    expect(plugin.calls).toHaveLength(0);
    // Above 1.5 × the median of the last hour (0.031 and 0.032 in effect: 0.0315), above 0.5 × 0.096.
    aws.ec2.spotPrices.set(m5a, 0.05);
    await eventually(() => plugin.calls.length >= 2);
    await morePolls(2);
    expect(calls('aws.ec2.spot.price-surge').sort((a, b) => (a['threshold_kind']! < b['threshold_kind']! ? -1 : 1))).toEqual([
      expect.objectContaining({ availability_zone: 'us-east-1a', price: '0.050000', threshold_kind: 'jump', threshold: '0.047250' }),
      expect.objectContaining({ availability_zone: 'us-east-1a', price: '0.050000', threshold_kind: 'on-demand-ratio', threshold: '0.048000' }),
    ]);
  });

  it('two entries on one pool that differ only in their thresholds give each of their events an id of its own, so a flow with a cooldown takes all four', async () => {
    await startParts();
    aws.ec2.spotPrices.set(m5a, 0.05, ago(120));
    const pool = `      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]`;
    // One jump over both levels: the same crossing sample for both. Then one fall below the lower level only, then one below both.
    core = await startCore(
      coreYaml(
        `      name: loose
${pool}
      maxPrice: 0.2
    - region: us-east-1
      name: tight
      endpoint: ${aws.url}
      interval: 250ms
${pool}
      maxPrice: 0.3
      hysteresis: 0.5`,
        '    cooldown: 1h\n',
      ),
    );
    // Each event either ran or was deduplicated away: wait for that, not for runs the old ids never got.
    const handled = async (n: number): Promise<void> => eventually(async () => plugin.calls.length + (await metric('hollowtrees_events_deduplicated_total', { flow: 'spot-price' })) >= n);
    await morePolls(2);
    aws.ec2.spotPrices.set(m5a, 0.4);
    await handled(2);
    aws.ec2.spotPrices.set(m5a, 0.18);
    await handled(3);
    aws.ec2.spotPrices.set(m5a, 0.1);
    await handled(4);
    await morePolls(4);
    expect(plugin.calls.map((c) => `${c.event.type} ${labelsOf(c.event)['threshold']} ${labelsOf(c.event)['price']}`).sort()).toEqual([
      'aws.ec2.spot.price-surge 0.200000 0.400000',
      'aws.ec2.spot.price-surge 0.300000 0.400000',
      'aws.ec2.spot.price-surge.resolved 0.200000 0.180000',
      'aws.ec2.spot.price-surge.resolved 0.300000 0.100000',
    ]);
    expect(new Set(plugin.calls.map((c) => c.event.id)).size).toBe(4);
  });

  it('reads every page of the history: a surge on the second page is seen', async () => {
    await startParts();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(200) },
      { price: 0.5, at: ago(100) },
    ]);
    // 1,100 newer changes of another pool: the first page (1,000, newest first) holds none of m5a's.
    aws.ec2.spotPrices.setSeries(
      m5b,
      Array.from({ length: 1_100 }, (_, i) => ({ price: 0.05 + (i % 2) * 0.001, at: new Date(Date.now() - 90 * MINUTE + i * 1_000) })),
    );
    core = await startCore(
      coreYaml(BOTH_ZONES_OVER_0_2),
    );
    await eventually(() => plugin.calls.length >= 1);
    expect(calls('aws.ec2.spot.price-surge')).toEqual([expect.objectContaining({ availability_zone: 'us-east-1a', price: '0.500000' })]);
    const pages = aws.callsTo('DescribeSpotPriceHistory');
    expect(pages[1]?.params['NextToken']).toBeTruthy();
    expect(pages[0]?.params).toMatchObject({ 'InstanceType.1': 'm5.large', 'ProductDescription.1': 'Linux/UNIX', 'Filter.1.Name': 'availability-zone', MaxResults: '1000' });
  });

  it('a throttled history is a failing source that backs off, counts its errors and recovers without a crash', async () => {
    await startParts();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.4, at: ago(10) },
    ]);
    // The SDK tries each call 3 times: two polls fail.
    aws.faults.throttle(6, { action: 'DescribeSpotPriceHistory' });
    core = await startCore(
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      maxPrice: 0.2`),
    );
    await eventually(async () => (await sourceStatus())?.['state'] === 'failing');
    expect(await sourceStatus()).toMatchObject({ lastError: { message: expect.stringContaining('DescribeSpotPriceHistory: RequestLimitExceeded') as string } });
    await eventually(() => plugin.calls.length >= 1, 30_000);
    expect(await metric('hollowtrees_spot_price_api_errors_total', { source: 'spot-price-us-east-1', action: 'DescribeSpotPriceHistory' })).toBe(2);
    expect(await sourceStatus()).toMatchObject({ state: 'running', errors: 2 });
    expect(aws.callsTo('DescribeSpotPriceHistory').filter((c) => c.errorCode === 'RequestLimitExceeded')).toHaveLength(6);
  });

  it('an EC2 call that gets no answer is abandoned after callTimeout: a failing source that recovers, not one stuck for good', async () => {
    await startParts();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.4, at: ago(10) },
    ]);
    // An endpoint that takes the request and never answers (a stalled proxy or VPC endpoint): longer than the test waits for the source to fail.
    aws.latency.set(20_000);
    core = await startCore(
      coreYaml(`      instanceTypes: [m5.large]
      availabilityZones: [us-east-1a]
      callTimeout: 300ms
      maxPrice: 0.2`),
    );
    await eventually(async () => (await sourceStatus())?.['state'] === 'failing');
    expect(await sourceStatus()).toMatchObject({ lastError: { message: expect.stringContaining('DescribeSpotPriceHistory: TimeoutError') as string } });
    // Announced only from a poll that read the history: the source polls again.
    aws.latency.set(0);
    await eventually(() => plugin.calls.length >= 1);
  });

  it('a failed discovery is logged as a DescribeInstances failure, not as the price history', async () => {
    await startParts();
    aws.ec2.addInstance({ ...m5a, tags: { cluster: 'prod' } });
    // What a role without ec2:DescribeInstances gets: AWS's message does not name the action.
    aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, { action: 'DescribeInstances' });
    core = await startCore(
      coreYaml(`      discover: { tags: { cluster: prod } }
      maxPrice: 0.2`),
    );
    const failure = (): Record<string, unknown> | undefined => core!.logs.find((l) => l['level'] === 'error' && l['source'] === 'sources.spotPrice[0]');
    await eventually(() => failure() !== undefined);
    expect(failure()).toMatchObject({ action: 'DescribeInstances', msg: expect.stringContaining('DescribeInstances') as string });
    expect(failure()!['msg']).not.toContain('price history');
  });

  it('discovers the pools of running spot instances by tag: on-demand and untagged instances add none', async () => {
    await startParts();
    aws.ec2.addInstance({ ...m5a, tags: { cluster: 'prod' } });
    aws.ec2.addInstance({ ...m5a, tags: { cluster: 'prod' } });
    aws.ec2.addInstance({ ...c5b, tags: { cluster: 'prod' } });
    aws.ec2.addInstance({ ...m5b, tags: { cluster: 'prod' }, lifecycle: 'on-demand' });
    aws.ec2.addInstance({ ...c5a, tags: { cluster: 'staging' } });
    aws.ec2.addInstance({ instanceType: 'r5.large', availabilityZone: 'us-east-1c', tags: { cluster: 'prod' }, state: 'terminated' });
    for (const pool of [m5a, m5b, c5a, c5b, { instanceType: 'r5.large', availabilityZone: 'us-east-1c' }]) {
      aws.ec2.spotPrices.setSeries(pool, [
        { price: 0.05, at: ago(120) },
        { price: 0.9, at: ago(5) },
      ]);
    }
    core = await startCore(
      coreYaml(`      discover: { tags: { cluster: prod } }
      maxPrice: 0.2`),
    );
    await eventually(() => plugin.calls.length >= 2);
    await morePolls(2);
    expect(calls('aws.ec2.spot.price-surge').map((l) => `${l['instance_type']}@${l['availability_zone']}`).sort()).toEqual(['c5.xlarge@us-east-1b', 'm5.large@us-east-1a']);
    expect(await metric('hollowtrees_spot_price_pools', { source: 'spot-price-us-east-1' })).toBe(2);
  });

  it('a discovered pool whose instances are all gone during its surge is watched until its end is announced, then dropped', async () => {
    await startParts();
    // The surge's flow moves capacity out of the pool: its last instance goes, then the price falls back.
    const instance = aws.ec2.addInstance({ ...m5a, tags: { cluster: 'prod' } });
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.9, at: ago(5) },
    ]);
    core = await startCore(
      coreYaml(`      discover: { tags: { cluster: prod } }
      maxPrice: 0.2`),
    );
    await eventually(() => plugin.calls.length >= 1);
    instance.state = 'terminated';
    aws.ec2.spotPrices.set(m5a, 0.05);
    await eventually(() => plugin.calls.length >= 2);
    expect(calls('aws.ec2.spot.price-surge.resolved')).toEqual([expect.objectContaining({ availability_zone: 'us-east-1a', instance_type: 'm5.large', price: '0.050000' })]);
    // Its end announced, the pool is no longer watched: no instance of it is left.
    await eventually(async () => (await metric('hollowtrees_spot_price_pools', { source: 'spot-price-us-east-1' })) === 0);
  });

  /** A surge open in m5.large/us-east-1a since 30 min, and core on `yaml()` (its flows given the plugin) once its flows took it. */
  async function surgeHandedIn(yaml: () => string): Promise<void> {
    await startParts();
    aws.ec2.spotPrices.setSeries(m5a, [
      { price: 0.05, at: ago(120) },
      { price: 0.4, at: ago(30) },
    ]);
    core = await startTestCore(yaml(), { clock });
    await eventually(() => plugin.calls.length >= 2);
  }
  const keepFlow = `  keep:
    allowedEvents: [aws.ec2.spot.price-surge]
    runRetry: { attempts: 1 }
    plugins: [rec]
`;
  const byFlow = (): string[] => plugin.calls.map((c) => `${c.flow} ${c.event.type}`).sort();

  it('a reload that renames a flow taking Spot price surges hands it the surge still open, once; the flow it did not change does not hear it again', async () => {
    await surgeHandedIn(() => coreYaml(BOTH_ZONES_OVER_0_2, keepFlow));
    const renamed = coreYaml(BOTH_ZONES_OVER_0_2, keepFlow).replace('\n  spot-price:\n', '\n  pool-drain:\n');
    await core!.reload(parseConfig(renamed, 'test.yaml', {}));
    await eventually(() => plugin.calls.length >= 3);
    // Polls enough for a surge handed in again at each one, and a reload that adds nothing.
    await morePolls(3);
    await core!.reload(parseConfig(renamed, 'test.yaml', {}));
    await morePolls(3);
    expect(byFlow()).toEqual(['keep aws.ec2.spot.price-surge', 'pool-drain aws.ec2.spot.price-surge', 'spot-price aws.ec2.spot.price-surge']);
    expect(new Set(plugin.calls.map((c) => c.event.id)).size).toBe(1);
    // Handed to one more flow, it is no second crossing.
    expect(await metric('hollowtrees_spot_price_crossings_total', { source: 'spot-price-us-east-1', threshold_kind: 'absolute', edge: 'surge' })).toBe(1);
  });

  it('a reload that changes a flow kept under its name to match Spot price surges hands it the surge still open, once; a changed flow that matched it before does not hear it again', async () => {
    // `widened` took no surge of us-east-1a before (its filter), so it never acted on this one: handing it over cannot act twice.
    const widened = (filters: string): string => `  widened:\n    allowedEvents: [aws.ec2.spot.price-surge]\n${filters}    runRetry: { attempts: 1 }\n    plugins: [rec]\n`;
    await surgeHandedIn(() => coreYaml(BOTH_ZONES_OVER_0_2, keepFlow + widened('    filters: { availability_zone: us-east-1b }\n')));
    // `keep` changes too, and still matches the surge it took: it must not take it again.
    const after = coreYaml(BOTH_ZONES_OVER_0_2, keepFlow.replace('runRetry', 'filters: { instance_type: m5.large }\n    runRetry') + widened(''));
    await core!.reload(parseConfig(after, 'test.yaml', {}));
    await eventually(() => plugin.calls.length >= 3);
    await morePolls(3);
    await core!.reload(parseConfig(after, 'test.yaml', {}));
    await morePolls(3);
    expect(byFlow()).toEqual(['keep aws.ec2.spot.price-surge', 'spot-price aws.ec2.spot.price-surge', 'widened aws.ec2.spot.price-surge']);
  });

  it('a reload that adds a flow taking Spot price surges hands it the surge still open at once, not at the next poll an interval later', async () => {
    const hourly = (flows: string): string => coreYaml(BOTH_ZONES_OVER_0_2, flows).replace('interval: 250ms', 'interval: 1h');
    await surgeHandedIn(() => hourly(keepFlow));
    await core!.reload(parseConfig(hourly(`${keepFlow}  added:\n    allowedEvents: [aws.ec2.spot.price-surge]\n    plugins: [rec]\n`), 'test.yaml', {}));
    await eventually(() => plugin.calls.length >= 3);
    expect(byFlow()).toEqual(['added aws.ec2.spot.price-surge', 'keep aws.ec2.spot.price-surge', 'spot-price aws.ec2.spot.price-surge']);
  });
});
