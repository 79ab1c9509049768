/**
 * The reclaim wave through several replicas sharing run state in Kubernetes
 * Leases (`state.backend: kubernetes`): every alert is POSTed to every replica,
 * as Prometheus sends to each of its Alertmanagers, and the plugin must be
 * called once per instance. The kube-apiserver stand-in runs in the bench
 * process (it is the harness), each replica in its own.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreClient } from '@hollowtrees/node-watcher';
import { pollUntil, startKubeApiServer, tempDir } from '@hollowtrees/testkit';
import { alertBatches, alertsBody } from './alerts.js';
import { startPluginSink } from './sinks.js';
import { summarize } from './stats.js';
import { postAlerts, startHollowtrees, type Target } from './targets.js';

export interface ReplicasWaveResult {
  replicas: number;
  alerts: number;
  /** First POST (to any replica) → the last instance's plugin call entered. */
  allCalledMs: number;
  /** Plugin calls for the wave's instances: one per instance is right, more is a double action. */
  pluginCalls: number;
  /** Requests of the wave the stand-in answered 429, as API Priority and Fairness does past {@link API_MAX_IN_FLIGHT} at once. */
  throttled: number;
  /** Lease calls the replicas made during the wave, by method (GET, POST, PUT, DELETE). */
  leaseCalls: Record<string, number>;
  /** All Lease calls ÷ alerts delivered (each alert reaches every replica). */
  leaseCallsPerDelivery: number;
  /** The same ÷ instances. */
  leaseCallsPerInstance: number;
  /**
   * The whole wave sent again to every replica once the default renew interval
   * (10 s, how long a replica caches another's run in progress) has passed, as
   * Prometheus re-sends firing alerts: its Lease calls by method, and plugin calls (none is right).
   */
  resend: { leaseCalls: Record<string, number>; leaseCallsPerInstance: number; pluginCalls: number };
  /**
   * Then one node watcher per instance following its notice's runs, all at once, each at a replica of its own choosing
   * (as a Service spreads them): the reads a follow starts with, made with the watcher's own client (`CoreClient`), the
   * notice's groups (`?eventId=`), then its runs. A read of the groups waits for a list of the Leases begun after it;
   * reads meanwhile share the next one.
   */
  followers?: FollowersResult;
}

/** What {@link ReplicasWaveResult.followers} measured. */
export interface FollowersResult {
  followers: number;
  /** First read → last answer. */
  totalMs: number;
  /** One follower's reads, one after another. */
  p50Ms: number;
  p99Ms: number;
  /** Lease lists (each page a call) the replicas made for them. */
  leaseLists: number;
}

/**
 * Requests the stand-in serves at once, answering one more 429 (a simple API Priority and Fairness):
 * about the seats and queues a real API server gives one service account's flow.
 */
const API_MAX_IN_FLIGHT = 128;

/** Lease calls among the stand-in's requests from `from` on, by method, and their total. */
function leaseCallsSince(requests: readonly { path: string; method: string }[], from: number): { byMethod: Record<string, number>; total: number } {
  const byMethod: Record<string, number> = {};
  let total = 0;
  for (const r of requests.slice(from)) {
    if (!r.path.includes('/leases')) continue;
    byMethod[r.method] = (byMethod[r.method] ?? 0) + 1;
    total++;
  }
  return { byMethod, total };
}

/** Sends every body to every target, each target's in order. */
const sendAll = (targets: readonly Target[], bodies: readonly string[]): Promise<unknown> => Promise.all(targets.map(async (t) => {
  for (const body of bodies) await postAlerts(t.url, body);
}));

/** `replicas` core processes on one stand-in, `alerts` instances in POSTs of `batch` to each. */
export async function runReplicasWave(nodeArgs: string[], replicas = 3, alerts = 1_000, batch = 100): Promise<ReplicasWaveResult> {
  const api = await startKubeApiServer({ maxInFlight: API_MAX_IN_FLIGHT, latencyMs: 20 });
  const dir = await tempDir('bench-replicas');
  const sink = await startPluginSink();
  const targets: Target[] = [];
  try {
    const kubeconfig = join(dir.path, 'kubeconfig');
    await writeFile(kubeconfig, api.kubeConfigFileText());
    for (let i = 0; i < replicas; i++) {
      targets.push(await startHollowtrees({ pluginAddress: sink.address, nodeArgs, kubernetesState: { kubeconfig, namespace: 'hollowtrees' } }));
    }
    // Warm each replica's HTTP, gRPC and API server connections as a running deployment has them.
    await Promise.all(targets.map((t, i) => postAlerts(t.url, alertsBody(`warm-${i}-`, 0, 10))));
    await pollUntil(() => sink.received >= 10 * replicas, 10_000, () => 'warm-up runs', 20);

    const base = sink.received;
    const firstRequest = api.requests.length;
    let lastEntry = 0;
    sink.onEntry((instance, at) => {
      if (instance.startsWith('wave-')) lastEntry = at;
    });
    const bodies = alertBatches('wave-', alerts, batch);
    const t0 = performance.now();
    await sendAll(targets, bodies);
    await pollUntil(() => sink.received - base >= alerts, 60_000, () => 'every instance to reach the plugin', 2);
    const allCalledMs = lastEntry - t0;
    // A double action would arrive after the first: give it time to show.
    await new Promise((r) => setTimeout(r, 1_000));
    const { byMethod: leaseCalls, total } = leaseCallsSince(api.requests, firstRequest);
    const pluginCalls = sink.received - base;
    const throttled = api.requests.slice(firstRequest).filter((r) => r.code === 429).length;
    await new Promise((r) => setTimeout(r, 10_000));
    const resendFrom = api.requests.length;
    await sendAll(targets, bodies);
    const resent = leaseCallsSince(api.requests, resendFrom);
    const followers = await followAll(targets, alerts, api.requests);
    return {
      replicas,
      alerts,
      allCalledMs,
      pluginCalls,
      throttled,
      leaseCalls,
      leaseCallsPerDelivery: total / (alerts * replicas),
      leaseCallsPerInstance: total / alerts,
      resend: { leaseCalls: resent.byMethod, leaseCallsPerInstance: resent.total / alerts, pluginCalls: sink.received - base - pluginCalls },
      followers,
    };
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
    await sink.close();
    await api.close();
    await dir.remove();
  }
}

/** `count` followers at once, follower i reading replica i mod n: see {@link ReplicasWaveResult.followers}. */
async function followAll(targets: readonly Target[], count: number, requests: readonly { path: string; method: string }[]): Promise<FollowersResult> {
  // Each follower follows one instance's event: their ids, as core made them from the alerts, read once before timing.
  const groups = (await (await fetch(`${targets[0]!.url}/api/v1/status/groups?limit=${count}`)).json()) as Array<{ eventId: string }>;
  if (groups.length !== count) throw new Error(`expected ${count} groups cooling down, read ${groups.length}`);
  const clients = Array.from({ length: count }, (_, i) => new CoreClient({ coreUrl: targets[i % targets.length]!.url }));
  const from = requests.length;
  try {
    const t0 = performance.now();
    const took = await Promise.all(
      clients.map(async (client, i) => {
        const { eventId } = groups[i]!;
        const signal = AbortSignal.timeout(60_000);
        const started = performance.now();
        const held = await client.groupsOf(eventId, signal);
        const runs = await client.runsOf(eventId, signal);
        // A replica lists its own last 100 runs and the others' ends: the one run, or none when it scrolled away.
        if (held?.length !== 1 || runs.length > 1) throw new Error(`follower ${i} read ${held?.length ?? 'too many'} groups and ${runs.length} runs of ${eventId}`);
        return performance.now() - started;
      }),
    );
    const totalMs = performance.now() - t0;
    const { p50, p99 } = summarize(took);
    const leaseLists = requests.slice(from).filter((r) => r.method === 'GET' && r.path.endsWith('/leases')).length;
    return { followers: count, totalMs, p50Ms: p50, p99Ms: p99, leaseLists };
  } finally {
    for (const client of clients) client.close();
  }
}
