/**
 * The wave drill, small enough for the test suite: a real core on the
 * replacement-first layout of examples/config.yaml, both reference plugins
 * served over loopback gRPC, the stand-ins over HTTP with latency and AWS-like
 * throttling. It asserts what a wave must do, not how fast (the speed is
 * bench/'s: `BENCH_ONLY=wave`).
 */
import { readFileSync } from 'node:fs';
import { createLogger, parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { jsonLogger, serve, type PluginServer } from '@hollowtrees/grpcplugin';
import { AwsSpotReplaceHandler } from '@hollowtrees/plugin-aws-spot';
import { createDrainHandler, type DrainHandler } from '@hollowtrees/plugin-k8s-drain';
import { closeEach, pollUntil, startAwsStandIn, tempDir, startKubeApiServer, type AwsStandIn, type KubeApiServer, type RateLimitPolicy } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeVerb } from './measure.js';
import { buildWave, waveAlertBodies, type WaveInstance } from './scenario.js';

const EXAMPLE_CONFIG = new URL('../../../examples/config.yaml', import.meta.url).pathname;
const NODES = 30;
const MAX_IN_FLIGHT = 8;
const quiet = jsonLogger({ service: 'wave-drill', level: 'silent' });
// Tight enough that the wave is throttled: a burst of three calls, then five a second.
const tightLimits: RateLimitPolicy = (service, action) => ({ bucket: service === 'ec2' ? `ec2:${action}` : 'autoscaling', limit: { capacity: 3, refillPerSecond: 5 } });

/**
 * examples/config.yaml as it is, but with deadlines a test can wait for: the drain's call 4 s and
 * one attempt (a drain that cannot finish fails in ~3 s), the AWS calls' retries faster; its run journal in
 * `stateDirectory`, a fresh one, so no earlier run's cooldowns hold.
 */
function exampleConfig(drainAddress: string, awsAddress: string, stateDirectory: string): ReturnType<typeof parseConfig> {
  const text = readFileSync(EXAMPLE_CONFIG, 'utf8');
  const shortened = text
    .replace(/timeout: 110s\n(\s+)retry: \{[^}]*\}/, 'timeout: 4s\n$1retry: { attempts: 1 }')
    .replace(/(address: \$\{AWS_SPOT_ADDRESS[^\n]*\n\s+timeout: 30s\n\s+)retry: \{[^}]*\}/, '$1retry: { attempts: 5, initialBackoff: 100ms, maxBackoff: 1s }');
  if (shortened === text || !shortened.includes('timeout: 4s') || !shortened.includes('initialBackoff: 100ms')) throw new Error('examples/config.yaml no longer has the plugin blocks this test shortens');
  return parseConfig(shortened, EXAMPLE_CONFIG, { K8S_DRAIN_ADDRESS: drainAddress, AWS_SPOT_ADDRESS: awsAddress, STATE_DIRECTORY: stateDirectory });
}

describe('a wave of reclaimed spot instances, end to end, replacement first', () => {
  let kube: KubeApiServer;
  let aws: AwsStandIn;
  let drain: DrainHandler;
  let replace: AwsSpotReplaceHandler;
  let servers: PluginServer[] = [];
  let core: Hollowtrees;
  let instances: WaveInstance[];
  let blocked: WaveInstance;
  let state: { path: string; remove: () => Promise<void> } | undefined;

  beforeAll(async () => {
    kube = await startKubeApiServer({ msPerGraceSecond: 1, latencyMs: 5 });
    aws = await startAwsStandIn({ latencyMs: 20, rateLimits: tightLimits });
    instances = buildWave(kube.cluster, aws.autoScaling, { nodes: NODES, groups: 2, podsPerNode: 4, spareNodes: 2 });
    // One node whose drain cannot finish: a pod its budget never lets go.
    blocked = instances[0]!;
    kube.cluster.addPod({ metadata: { name: 'singleton', namespace: 'shop', labels: { app: 'singleton' } }, spec: { nodeName: blocked.node } });
    kube.cluster.addPodDisruptionBudget({ metadata: { name: 'singleton', namespace: 'shop' }, spec: { selector: { matchLabels: { app: 'singleton' } }, minAvailable: 1 } });

    const kc = new KubeConfig();
    kc.loadFromOptions(kube.kubeConfigOptions());
    drain = createDrainHandler(kc, { maxInFlight: MAX_IN_FLIGHT, logger: quiet });
    replace = new AwsSpotReplaceHandler({
      region: 'us-east-1',
      endpoint: aws.url,
      credentials: { accessKeyId: 'drill', secretAccessKey: 'drill' },
      completeLifecycleHooks: 'after-drain',
      // The wave's 30 calls reach the plugin through a core that parses and dispatches them; on a busy
      // machine they come spread over more than the default 25 ms, and what is asserted is that they share calls.
      coalesceMs: 300,
      logger: quiet,
    });
    servers = [await serve(0, drain, { host: '127.0.0.1' }), await serve(0, replace, { host: '127.0.0.1' })];
    state = await tempDir('wave-drill-state');
    const config = exampleConfig(`127.0.0.1:${servers[0]!.port}`, `127.0.0.1:${servers[1]!.port}`, state.path);
    core = await startHollowtrees(config, { listen: '127.0.0.1:0', logger: createLogger('silent') });

    await Promise.all(
      waveAlertBodies(instances, 10).map(async (body) => {
        const res = await fetch(`${core.url}/api/v2/alerts`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        expect(res.status).toBe(200);
      }),
    );
    // Both flows of every instance have run.
    await pollUntil(() => core.engine.recentRuns().length >= 2 * NODES, 25_000, () => `${core.engine.recentRuns().length} of ${2 * NODES} runs finished`);
  }, 30_000);

  afterAll(() =>
    closeEach([
      () => core?.close(),
      ...servers.map((s) => () => s.close()),
      () => drain?.close(),
      async () => replace?.close(),
      () => kube?.close(),
      () => aws?.close(),
      async () => state?.remove(),
    ]),
  );

  const runsOf = (flow: string) => core.engine.recentRuns().filter((r) => r.flow === flow);
  const instanceOf = (groupKey: string): string | undefined => /instance_id="([^"]+)"/.exec(groupKey)?.[1];

  it('requests every replacement, also for the node whose drain cannot finish, and leaves the groups as they were', () => {
    expect(runsOf('spot-replace').map((r) => r.outcome)).toEqual(instances.map(() => 'succeeded'));
    for (const group of aws.autoScaling.groups.values()) {
      expect(instances.filter((i) => i.group === group.name && group.members.has(i.instanceId))).toEqual([]);
      expect(group.minSize).toBe(Math.floor(NODES / 2 / 2));
      expect(group.tags.size).toBe(0);
      expect(group.desiredCapacity).toBe(NODES / 2);
    }
    expect(instances.every((i) => aws.ec2.instances.get(i.instanceId)?.tags['hollowtrees:detached-from'] === i.group)).toBe(true);
  });

  it('drains every other node; only the blocked one does not finish (its run waits for a later try), and only in the drain flow', () => {
    const failed = runsOf('spot-drain').filter((r) => r.outcome !== 'succeeded');
    expect(failed.map((r) => [instanceOf(r.groupKey), r.outcome, r.calls.map((c) => `${c.plugin} ${c.code}`)])).toEqual([
      [blocked.instanceId, 'retrying', ['k8s-drain DEADLINE_EXCEEDED']],
    ]);
    for (const { node } of instances) {
      expect(kube.cluster.node(node)?.spec?.unschedulable).toBe(true);
      const left = kube.cluster.pods(node).filter((p) => p.metadata.namespace === 'shop').map((p) => p.metadata.name);
      expect(left).toEqual(node === blocked.node ? ['singleton'] : []);
      // DaemonSet pods stay.
      expect(kube.cluster.pods(node).filter((p) => p.metadata.namespace === 'monitoring')).toHaveLength(1);
    }
    for (const run of runsOf('spot-drain').filter((r) => r.outcome === 'succeeded')) {
      expect(run.calls.map((c) => `${c.plugin} ${c.code}`)).toEqual(['k8s-drain OK', 'aws-spot OK', 'log OK']);
    }
    // Each replacement is requested once: by the replace flow's aws-spot call nearly always (the drain
    // flow calls aws-spot only after its drain), by the drain flow's when a quick drain overtakes a
    // detach queued behind its group's others. The other call answers from memory.
    const awsSpotAnswers = new Map<string, string[]>();
    for (const run of [...runsOf('spot-replace'), ...runsOf('spot-drain')]) {
      const instance = instanceOf(run.groupKey)!;
      for (const call of run.calls.filter((c) => c.plugin === 'aws-spot')) awsSpotAnswers.set(instance, [...(awsSpotAnswers.get(instance) ?? []), call.message]);
    }
    for (const { instanceId } of instances.filter((i) => i !== blocked)) {
      const answers = awsSpotAnswers.get(instanceId) ?? [];
      expect(answers.filter((m) => m.startsWith(`detached ${instanceId} `))).toHaveLength(1);
      expect(answers.filter((m) => /^replacement already requested by this process/.test(m))).toHaveLength(1);
    }
  });

  it('shares the AWS calls of the wave: batched look-ups and detaches, throttling absorbed by retries', () => {
    const detaches = aws.callsTo('DetachInstances').filter((c) => c.errorCode === undefined);
    const ids = detaches.flatMap((c) => Object.entries(c.params).filter(([k]) => k.startsWith('InstanceIds.member.')).map(([, v]) => v));
    expect(ids.sort()).toEqual(instances.map((i) => i.instanceId).sort());
    // Several instances a call, never more than the API's 20.
    expect(detaches.length).toBeLessThan(NODES / 2);
    expect(Math.max(...detaches.map((c) => Object.keys(c.params).filter((k) => k.startsWith('InstanceIds.member.')).length))).toBeLessThanOrEqual(20);
    expect(aws.callsTo('DescribeInstances').filter((c) => c.errorCode === undefined).length).toBeLessThan(NODES / 2);
    // The AWS plugin's answers to the drain flow cost no AWS call at all: the calls stop with the first flow.
    expect(aws.callsTo('DescribeAutoScalingInstances')).toHaveLength(0);
    expect(Object.values(aws.rateLimiter?.throttled() ?? {}).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('shares the Kubernetes calls of the wave: one listing and watch of nodes and of pods, a few kept-alive connections, no call per node but its cordon, evictions and events', async () => {
    await drain.eventsRecorded();
    const verbs = kube.requests.map((r) => kubeVerb({ ...r, watch: r.query.watch === 'true' }));
    for (const collection of ['nodes', 'pods']) {
      expect(verbs.filter((v) => v === `list ${collection}`)).toHaveLength(1);
      expect(verbs.filter((v) => v === `watch ${collection}`)).toHaveLength(1);
    }
    expect(verbs.filter((v) => v === 'get node')).toEqual([]);
    expect(kube.requests.filter((r) => r.query.fieldSelector !== undefined)).toEqual([]);
    expect(verbs.filter((v) => v === 'patch node')).toHaveLength(NODES);
    expect(kube.requests.length).toBeGreaterThan(5 * NODES);
    expect(kube.connections()).toBeLessThanOrEqual(MAX_IN_FLIGHT + 2);
  });
});
