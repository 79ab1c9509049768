import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginClient } from '@hollowtrees/grpcplugin';
import { spawnCaptured, startKubeApiServer, tempDir, WALL_CLOCK_STEPPED, waitForOutput, wallClockStepPreload, type KubePod } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';

// The built bin, as `npx hollowtrees-k8s-drain` runs it (`pnpm test` builds first).
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
/** Preloaded into the plugin: SIGUSR2 steps its wall clock 2 h forward, and leaves the monotonic clock alone. */
const STEP_PRELOAD = wallClockStepPreload();

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A pod of StatefulSet `db` on `node`. */
const dbPod = (name: string, node: string): KubePod => ({
  metadata: { name, namespace: 'apps', labels: { app: 'db' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'db', controller: true }] },
  spec: { nodeName: node },
});

describe('a step of the wall clock while the k8s-drain plugin drains', () => {
  it('2 h forward while a budget holds an eviction back: the drain retries on until its own deadline, and evicts the pod once the budget allows', async () => {
    const kube = await startKubeApiServer();
    cleanups.push(() => kube.close());
    kube.cluster.addNode({ metadata: { name: 'node-a' } });
    kube.cluster.addNode({ metadata: { name: 'node-b' } });
    kube.cluster.addPod(dbPod('db-0', 'node-a'));
    kube.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    const dir = await tempDir('k8s-drain-clock-step');
    cleanups.push(dir.remove);
    const kubeconfig = join(dir.path, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeConfigFileText());
    const proc = spawnCaptured('hollowtrees-k8s-drain', process.execPath, ['--no-warnings', CLI, '--port', '0', '--kubeconfig', kubeconfig], {
      NODE_OPTIONS: `--import ${STEP_PRELOAD}`,
      KUBECONFIG: '',
      HOME: dir.path,
    });
    cleanups.push(() => proc.kill());
    const { port } = JSON.parse(await waitForOutput(proc, /hollowtrees-k8s-drain serving/, 15_000)) as { port: number };
    const client = new PluginClient(`127.0.0.1:${port}`);
    cleanups.push(async () => client.close());
    const evictions = (): number => kube.requests.filter((r) => r.path.endsWith('/eviction')).length;

    const drain = client.handle({ id: 'e1', source: 'test', specversion: '1.0', type: 't', data: { labels: { node: 'node-a' } } }, { flow: 'spot', timeoutMs: 30_000 });
    await vi.waitFor(() => expect(evictions()).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
    proc.child.kill('SIGUSR2');
    await waitForOutput(proc, new RegExp(WALL_CLOCK_STEPPED));
    // The call's 30 s are not over: the budget's refusal is retried after the step too (it waits at most 5 s between tries).
    const beforeStep = evictions();
    await vi.waitFor(() => expect(evictions()).toBeGreaterThan(beforeStep), { timeout: 10_000, interval: 20 });
    // A second db pod elsewhere: the budget allows one eviction.
    kube.cluster.addPod(dbPod('db-1', 'node-b'));

    const answer = await drain;
    expect(answer.attributes).toMatchObject({ node: 'node-a', pods_evicted: '1', pods_remaining: '0' });
    expect(kube.cluster.pods('node-a')).toEqual([]);
  }, 60_000);
});
