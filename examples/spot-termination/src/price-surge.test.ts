import { Writable } from 'node:stream';
import { pollUntil, type KubeApiServer } from '@hollowtrees/testkit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CALM_PRICE, MAX_PRICE, REPLACES_TAG, SURGING_POOL, startSurgeStack, type SurgeStack, type SurgeStackOptions } from './surge-stack.js';

let stack: SurgeStack | undefined;
let logs: Array<Record<string, unknown>> = [];
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  logs = [];
});

/** Starts the stack with core's log lines kept in `logs`. */
async function start(options: SurgeStackOptions): Promise<SurgeStack> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return (stack = await startSurgeStack({ ...options, logger: pino({ level: 'info' }, sink) }));
}

/** The labels of the event the `log` step of a run got: the source's labels and what the plugins before it returned. */
const loggedLabels = (): Record<string, string> => (logs.find((l) => l['plugin'] === 'log')!['event'] as { data: { labels: Record<string, string> } }).data.labels;

const runsOf = (s: SurgeStack, flow: string) => s.core.engine.recentRuns().filter((r) => r.flow === flow);

/** Per pool node, from the stand-in's side: from its first eviction call until the last pod it evicted was gone. */
function drainWindows(kube: KubeApiServer, nodes: readonly string[]): Array<{ node: string; from: number; to: number }> {
  const removals = kube.cluster.removals();
  return nodes.flatMap((node) => {
    const evictions = kube.cluster.evictions().filter((e) => e.node === node);
    if (evictions.length === 0) return [];
    const evicted = new Set(evictions.filter((e) => e.code === 201).map((e) => e.name));
    const gone = removals.filter((r) => r.node === node && evicted.has(r.name)).map((r) => r.atMs);
    return [{ node, from: Math.min(...evictions.map((e) => e.atMs)), to: Math.max(...gone, ...evictions.map((e) => e.atMs)) }];
  });
}

/** The most windows open at one moment. */
const mostAtOnce = (windows: ReadonlyArray<{ from: number; to: number }>): number => Math.max(0, ...windows.map((w) => windows.filter((o) => o.from <= w.from && w.from <= o.to).length));

describe('a spot price surge, end to end: price history → core → replacement first → paced drain', () => {
  it('one surge: capacity in other pools is running before the first eviction, then the pool drains two nodes at a time under its PDB', async () => {
    const s = await start({ maxUnavailable: 2 });
    s.setPrice(MAX_PRICE * 3);
    await pollUntil(() => runsOf(s, 'spot-price-surge').length > 0, 60_000, () => `runs: ${JSON.stringify(s.core.engine.recentRuns())}`, 50);

    const [run] = runsOf(s, 'spot-price-surge');
    expect(run).toMatchObject({ outcome: 'succeeded' });
    expect(run!.calls.map((c) => [c.plugin, c.code])).toEqual([['aws-spot', 'OK'], ['k8s-drain', 'OK'], ['log', 'OK']]);

    // Replacement first: one per pool instance, none in the surging pool, all running before any eviction.
    const replacements = s.aws.ec2.instancesTagged(REPLACES_TAG);
    expect(replacements.map((i) => i.tags[REPLACES_TAG]).sort()).toEqual(s.poolInstances.map((i) => i.instanceId).sort());
    expect(replacements.filter((i) => i.availabilityZone === SURGING_POOL.availabilityZone && i.instanceType === SURGING_POOL.instanceType)).toEqual([]);
    const lastRunning = Math.max(...replacements.map((i) => i.runningAt!.getTime()));
    const firstEviction = Math.min(...s.kube.cluster.evictions().map((e) => e.atMs));
    expect(lastRunning).toBeLessThan(firstEviction);

    // The pool drained, at most two nodes at a time; the budget refused what would have broken it.
    const windows = drainWindows(s.kube, s.poolNodes);
    expect(windows.map((w) => w.node).sort()).toEqual([...s.poolNodes].sort());
    expect(mostAtOnce(windows)).toBeLessThanOrEqual(2);
    expect(s.kube.cluster.evictions().every((e) => e.code === 201 || e.code === 429)).toBe(true);
    for (const node of s.poolNodes) {
      expect(s.kube.cluster.node(node)!.spec?.unschedulable).toBe(true);
      expect(s.kube.cluster.pods(node)).toEqual([]);
    }
    // Other pools: not cordoned, nothing evicted; the pool's pods came back there (the stand-in's ReplicaSets
    // replace an evicted pod on a schedulable node), none on a node of the pool.
    for (const node of s.otherNodes) expect(s.kube.cluster.node(node)!.spec?.unschedulable).not.toBe(true);
    expect(s.kube.cluster.evictions().filter((e) => s.otherNodes.includes(e.node))).toEqual([]);
    const podsOutside = s.otherNodes.flatMap((node) => s.kube.cluster.pods(node));
    expect(podsOutside).toHaveLength(3 * (s.otherNodes.length + s.poolNodes.length));
    expect(s.kube.cluster.pods().filter((p) => p.status?.phase === 'Pending')).toEqual([]);

    // The event the last step saw: the pool's labels, and what both plugins reported.
    expect(loggedLabels()).toMatchObject({
      availability_zone: 'us-east-1a',
      instance_type: 'm5.large',
      threshold_kind: 'absolute',
      replacements_running: String(s.poolNodes.length),
      nodes_drained: String(s.poolNodes.length),
      nodes_left: '0',
      stopped_early: 'false',
    });

    // Further polls see the same surge: no second event, no second run.
    const polls = s.aws.callsTo('DescribeSpotPriceHistory').length;
    await pollUntil(() => s.aws.callsTo('DescribeSpotPriceHistory').length >= polls + 3, 10_000, () => 'three more polls', 50);
    expect(runsOf(s, 'spot-price-surge')).toHaveLength(1);
    expect(s.aws.ec2.instancesTagged(REPLACES_TAG)).toHaveLength(s.poolNodes.length);
  }, 90_000);

  it('the price falls back mid-way: the drain stops, and the nodes it had not drained are uncordoned', async () => {
    // One node at a time, each taking about 2 s, so the resolution lands while most of the pool waits.
    const s = await start({ maxUnavailable: 1, podGraceSeconds: 20, msPerGraceSecond: 100 });
    s.setPrice(MAX_PRICE * 3);
    await pollUntil(() => s.kube.cluster.evictions().length > 0, 60_000, () => 'the first eviction', 50);
    s.setPrice(CALM_PRICE);
    await pollUntil(() => runsOf(s, 'spot-price-surge').length > 0 && runsOf(s, 'spot-price-surge-resolved').length > 0, 60_000, () => `runs: ${JSON.stringify(s.core.engine.recentRuns())}`, 50);

    const [surge] = runsOf(s, 'spot-price-surge');
    expect(surge).toMatchObject({ outcome: 'succeeded' });
    expect(loggedLabels()).toMatchObject({ stopped_early: 'true' });
    const drained = Number(loggedLabels()['nodes_drained']);
    const left = Number(loggedLabels()['nodes_left']);
    expect(drained + left).toBe(s.poolNodes.length);
    expect(left).toBeGreaterThan(0);
    expect(runsOf(s, 'spot-price-surge-resolved')[0]).toMatchObject({ outcome: 'succeeded' });

    // The nodes not drained are schedulable again with their pods in place; no node was left half-drained and cordoned.
    const untouched = s.poolNodes.filter((node) => s.kube.cluster.evictions().every((e) => e.node !== node));
    expect(untouched.length).toBeGreaterThanOrEqual(left - 1);
    for (const node of untouched) {
      expect(s.kube.cluster.node(node)!.spec?.unschedulable).not.toBe(true);
      expect(s.kube.cluster.pods(node).filter((p) => p.metadata.name!.includes(node.slice('node-'.length)))).toHaveLength(3);
    }
  }, 90_000);
});
