/**
 * The reclaim wave through several replicas sharing run state in Kubernetes
 * Leases (`state.backend: kubernetes`): every alert is POSTed to every replica,
 * as Prometheus sends to each of its Alertmanagers, and the plugin must be
 * called once per instance. The kube-apiserver stand-in runs in the bench
 * process (it is the harness), each replica in its own.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pollUntil, startKubeApiServer, tempDir } from '@hollowtrees/testkit';
import { alertBatches, alertsBody } from './alerts.js';
import { startPluginSink } from './sinks.js';
import { postAlerts, startHollowtrees, type Target } from './targets.js';

export interface ReplicasWaveResult {
  replicas: number;
  alerts: number;
  /** First POST (to any replica) → the last instance's plugin call entered. */
  allCalledMs: number;
  /** Plugin calls for the wave's instances: one per instance is right, more is a double action. */
  pluginCalls: number;
  /** Lease calls the replicas made during the wave, by method (GET, POST, PUT, DELETE). */
  leaseCalls: Record<string, number>;
  /** All Lease calls ÷ alerts delivered (each alert reaches every replica). */
  leaseCallsPerDelivery: number;
  /** The same ÷ instances. */
  leaseCallsPerInstance: number;
}

/** `replicas` core processes on one stand-in, `alerts` instances in POSTs of `batch` to each. */
export async function runReplicasWave(nodeArgs: string[], replicas = 3, alerts = 1_000, batch = 100): Promise<ReplicasWaveResult> {
  const api = await startKubeApiServer();
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
    await Promise.all(
      targets.map(async (t) => {
        for (const body of bodies) await postAlerts(t.url, body);
      }),
    );
    await pollUntil(() => sink.received - base >= alerts, 60_000, () => 'every instance to reach the plugin', 2);
    const allCalledMs = lastEntry - t0;
    // A double action would arrive after the first: give it time to show.
    await new Promise((r) => setTimeout(r, 1_000));
    const leaseCalls: Record<string, number> = {};
    let total = 0;
    for (const r of api.requests.slice(firstRequest)) {
      if (!r.path.includes('/leases')) continue;
      leaseCalls[r.method] = (leaseCalls[r.method] ?? 0) + 1;
      total++;
    }
    return {
      replicas,
      alerts,
      allCalledMs,
      pluginCalls: sink.received - base,
      leaseCalls,
      leaseCallsPerDelivery: total / (alerts * replicas),
      leaseCallsPerInstance: total / alerts,
    };
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
    await sink.close();
    await api.close();
    await dir.remove();
  }
}
