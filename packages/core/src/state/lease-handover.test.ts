import { Code, PluginError, systemClock, type CloudEvent } from '@hollowtrees/grpcplugin';
import { startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { observeLeases } from '../../test/support/observe-leases.js';
import { startRecordingPlugin, type RecordingPlugin } from '../../test/support/recording-plugin.js';
import { parseConfig } from '../config/load-config.js';
import { EngineMetrics } from '../flow/engine-metrics.js';
import { FlowEngine } from '../flow/flow-engine.js';
import { buildPlugins } from '../plugins/plugin-registry.js';
import { grpcActionPlugin } from '../plugins/grpc-action-plugin.js';
import type { RunSettlement } from '../sources/event-sink.js';
import { KubernetesRunStateStore } from './kubernetes-store.js';
import { kubeLeaseApi, loadStoreKubeConfig } from './lease-api.js';
import { StoreMetrics } from './store-metrics.js';

/** Replicas of core's engine on the kube-apiserver stand-in, calling a real gRPC plugin over loopback. */
let api: KubeApiServer;
let plugin: RecordingPlugin;
const stores: KubernetesRunStateStore[] = [];
const engines: FlowEngine[] = [];
beforeEach(async () => {
  api = await startKubeApiServer();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.shutdown(0)));
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await plugin?.close();
  await api.close();
});

const instanceOf = (event: CloudEvent): string => (event.data as { labels: { instance_id: string } }).labels.instance_id;
const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });

/** How a replica runs: its flow's one slot count, its Lease's duration and renewal, and the flow's `runRetry`. */
interface ReplicaOptions {
  concurrency?: number;
  leaseDurationMs?: number;
  renewIntervalMs?: number;
  runRetry?: string;
}

/** A replica: its store and an engine whose flow `spot` calls the recording plugin `drain`. */
function replica(identity: string, options: ReplicaOptions = {}): { engine: FlowEngine; store: KubernetesRunStateStore; metrics: EngineMetrics } {
  const { concurrency = 1, leaseDurationMs = 30_000, renewIntervalMs = 10_000, runRetry = '{ attempts: 1 }' } = options;
  const logger = pino({ level: 'silent' });
  const leaseApi = kubeLeaseApi(loadStoreKubeConfig(api.kubeConfigFileText()), { namespace: 'ops', timeoutMs: 2_000, maxInFlight: 32, metrics: new StoreMetrics(new Registry()), clock: systemClock });
  const store = new KubernetesRunStateStore({ api: leaseApi, identity, leasePrefix: 'hollowtrees-', leaseDurationMs, renewIntervalMs, maxGroups: 1_000, clock: systemClock, logger });
  const yaml = `plugins:\n  drain: { type: grpc, address: "${plugin.address}", timeout: 60s, retry: { attempts: 1 } }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: ${concurrency}\n    cooldown: 10m\n    runRetry: ${runRetry}\n    plugins: [drain]\n`;
  const { config } = parseConfig(yaml, 'test.yaml', {});
  const metrics = new EngineMetrics(new Registry());
  const engine = new FlowEngine({ flows: config.flows, plugins: buildPlugins(config, new Map(), logger, grpcActionPlugin), logger, metrics, store, random: () => 1 });
  store.onCutShort((run) => engine.goOnWith(run));
  stores.push(store);
  engines.push(engine);
  return { engine, store, metrics };
}

const observe = (store: KubernetesRunStateStore): Promise<void> => observeLeases(api, store);
const callsOf = (instance: string): number => plugin.calls.filter((c) => instanceOf(c.event) === instance).length;

describe('runs handed from replica to replica', () => {
  it('a run still queued at each of 7 rolling updates (never started, no plugin called) is run once in the end, not given up as resumed too often', async () => {
    // Each replica's one slot is held by a run of its own until its shutdown cuts it short.
    plugin = await startRecordingPlugin((event, { signal }) => (instanceOf(event).startsWith('busy-') && plugin.calls.filter((c) => instanceOf(c.event) === instanceOf(event)).length === 1 ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled')))) : undefined));
    for (let hop = 0; hop < 7; hop++) {
      const { engine, store } = replica(`core-${hop}`);
      engine.dispatch(notice(`busy-${hop}`, `busy-${hop}`), Date.now());
      await expect.poll(() => plugin.calls.filter((c) => instanceOf(c.event) === `busy-${hop}`).length, { timeout: 5_000, interval: 10 }).toBe(1);
      // The backlog's run: sent to the first replica, handed on by each after.
      if (hop === 0) engine.dispatch(notice('e1', 'i-1'), Date.now());
      else store.sweep(Date.now());
      await expect.poll(() => store.get('spot:{instance_id="i-1"}')?.phase, { timeout: 5_000, interval: 10 }).toBe('running');
      expect(await store.commit()).toBe(true);
      expect(plugin.calls.filter((c) => instanceOf(c.event) === 'i-1')).toHaveLength(0);
      await engine.shutdown(50);
      await store.close();
    }
    const { engine, store } = replica('core-7', { concurrency: 100 });
    store.sweep(Date.now());
    await expect.poll(() => plugin.calls.filter((c) => instanceOf(c.event) === 'i-1').length, { timeout: 5_000, interval: 10 }).toBe(1);
    await engine.drain();
    expect(engine.groups().find((g) => g.key === 'spot:{instance_id="i-1"}')?.phase).toBe('cooling');
  }, 60_000);

  it('a run waiting for its next try whose renewals failed past its Lease is no longer listed nor counted as waiting here, and its try is made once, by the replica that took it over', async () => {
    plugin = await startRecordingPlugin((_event, _context, index) => {
      if (index === 0) throw new PluginError(Code.Unavailable, 'EC2 throttled');
    });
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 300, runRetry: '{ attempts: 3, initialBackoff: 4s, maxBackoff: 4s }' });
    const heardOnA: RunSettlement[] = [];
    a.engine.dispatch(notice('e1', 'i-1'), Date.now(), (settled) => heardOnA.push(settled));
    await expect.poll(() => a.engine.groups().map((g) => g.phase), { timeout: 5_000, interval: 10 }).toEqual(['retrying']);
    await expect.poll(() => api.cluster.leases.all()[0]?.metadata.annotations?.['hollowtrees.io/run-place'], { timeout: 5_000, interval: 10 }).toContain('"waiting":true');
    // a's next renewal gets no answer (a network partition between a and the API server): unconfirmed past what its Lease allows,
    // its hold lapses at its next tick, and it knows it.
    let partitionEnds!: () => void;
    api.failNext(1, { method: 'PUT', effect: 'delay', until: new Promise<void>((resolve) => (partitionEnds = resolve)) });
    await expect.poll(() => a.store.holdLost('spot:{instance_id="i-1"}'), { timeout: 5_000, interval: 10 }).toBeUndefined();
    const b = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 300, runRetry: '{ attempts: 3, initialBackoff: 4s, maxBackoff: 4s }' });
    await observe(b.store);
    await sleep(1_100);
    // b finds the Lease expired with its event and goes on with the run: it waits for the same try.
    await observe(b.store);
    await expect.poll(() => api.cluster.leases.all().map((l) => l.spec?.holderIdentity), { timeout: 5_000, interval: 10 }).toEqual(['b']);
    await expect.poll(() => b.engine.groups().map((g) => g.phase), { timeout: 5_000, interval: 10 }).toEqual(['retrying']);
    partitionEnds();
    // a lists the group as another replica's, and counts no run waiting here.
    expect(a.engine.groups().filter((g) => g.replica === undefined)).toEqual([]);
    expect((await a.metrics.runsWaitingForRetry.get()).values.map((v) => v.value)).toEqual([0]);
    // A source that acknowledges only after acting keeps its message: how the run ends is not known here.
    expect(heardOnA).toEqual([expect.objectContaining({ flow: 'spot', outcome: 'running_elsewhere' })]);
    // The try comes due: made once, by b.
    await plugin.waitForCalls(2, 10_000);
    await sleep(500);
    expect(callsOf('i-1')).toBe(2);
    await expect.poll(() => b.engine.groups().map((g) => g.phase), { timeout: 5_000, interval: 10 }).toEqual(['cooling']);
  }, 30_000);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
