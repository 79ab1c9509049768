import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PluginClient } from '@hollowtrees/grpcplugin';
import { spawnCaptured, startKubeApiServer, tempDir, waitForOutput, type Spawned } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';

// The built bin, as `npx hollowtrees-k8s-drain` runs it (`pnpm test` builds first).
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workDir(): Promise<string> {
  const dir = await tempDir('k8s-drain-cli');
  cleanups.push(dir.remove);
  return dir.path;
}

/** Runs the bin with `args`, in an environment whose home has no kubeconfig. */
async function run(args: string[], env: Record<string, string> = {}): Promise<Spawned> {
  const proc = spawnCaptured('hollowtrees-k8s-drain', process.execPath, [CLI, '--port', '0', ...args], { KUBECONFIG: '', HOME: await workDir(), ...env });
  cleanups.push(() => proc.kill());
  return proc;
}

async function kubeconfigFor(text: string): Promise<string> {
  const path = join(await workDir(), 'kubeconfig');
  await writeFile(path, text);
  return path;
}

describe('hollowtrees-k8s-drain', () => {
  it('exits 2 at start, saying so, when no kubeconfig is found', async () => {
    const proc = await run([]);
    expect(await proc.exited).toBe('code 2');
    expect(proc.output()).toMatch(/^hollowtrees-k8s-drain: no usable Kubernetes credentials: no kubeconfig found: \$KUBECONFIG is unset, ~\/\.kube\/config does not exist/);
  });

  it('exits 2 at start when the API server refuses its credentials', async () => {
    const kube = await startKubeApiServer({ token: 'the-right-one' });
    cleanups.push(() => kube.close());
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText().replace('the-right-one', 'a-wrong-one'))]);
    expect(await proc.exited).toBe('code 2');
    expect(proc.output()).toContain(`no usable Kubernetes credentials: cannot list nodes with the Kubernetes API at ${kube.url} (user "testkit"): listing nodes: HTTP 401 (the API server refused the credentials)`);
  });

  it('exits 2 at start when the API server cannot be reached, or the context does not exist', async () => {
    const kube = await startKubeApiServer();
    const kubeconfig = await kubeconfigFor(kube.kubeConfigFileText());
    await kube.close();
    // Side by side: a process start takes seconds on a busy machine, two in a row could outlast the test's timeout.
    const [unreachable, noContext] = await Promise.all([run(['--kubeconfig', kubeconfig]), run(['--kubeconfig', kubeconfig, '--context', 'prod'])]);
    expect(await unreachable.exited).toBe('code 2');
    expect(unreachable.output()).toContain(`cannot list nodes with the Kubernetes API at ${kube.url}`);
    expect(unreachable.output()).toContain('cannot reach the Kubernetes API');
    expect(await noContext.exited).toBe('code 2');
    expect(noContext.output()).toContain('the kubeconfig has no context "prod" (it has: testkit)');
  });

  it('exits 0 at a SIGTERM while it is still starting (checking its access to an API server that does not answer), not only once it serves', async () => {
    const kube = await startKubeApiServer();
    const asked: string[] = [];
    const silent = createServer((req) => void asked.push(req.url ?? ''));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () => kube.close(),
      () =>
        new Promise((resolve) => {
          silent.closeAllConnections();
          silent.close(resolve);
        }),
    );
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText().replace(kube.url, `http://127.0.0.1:${(silent.address() as AddressInfo).port}`))]);
    await vi.waitFor(() => expect(asked.length).toBeGreaterThan(0), { timeout: 15_000, interval: 20 });
    proc.child.kill('SIGTERM');
    // Without a listener of its own it would die of the signal here; as a container's PID 1 it would not see it at all.
    expect(await proc.exited).toBe('code 0');
  });

  it('with working credentials serves on 127.0.0.1, logging in core\'s format on stdout', async () => {
    const kube = await startKubeApiServer({ token: 'the-right-one' });
    cleanups.push(() => kube.close());
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText())]);
    const serving = JSON.parse(await waitForOutput(proc, /hollowtrees-k8s-drain serving/)) as Record<string, unknown>;
    expect(Object.keys(serving).slice(0, 3)).toEqual(['level', 'time', 'service']);
    expect(serving).toMatchObject({ level: 'info', service: 'hollowtrees-k8s-drain', host: '127.0.0.1', tls: false, msg: 'hollowtrees-k8s-drain serving' });
    expect(proc.output()).not.toMatch(/anyone who can reach the port/);
    expect(kube.requests.some((r) => r.path === '/api/v1/nodes' && r.query.limit === '1' && r.code === 200)).toBe(true);
  });

  it('never evicts the pod it runs in, named by POD_NAMESPACE and POD_NAME, when it drains its own node', async () => {
    const kube = await startKubeApiServer({ msPerGraceSecond: 5 });
    cleanups.push(() => kube.close());
    kube.cluster.addNode({ metadata: { name: 'node-a' } });
    for (const [namespace, name] of [['hollowtrees', 'hollowtrees-7d9f'], ['apps', 'api-0']] as const) {
      kube.cluster.addPod({ metadata: { name, namespace, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name, uid: name, controller: true }] }, spec: { nodeName: 'node-a' } });
    }
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText())], { POD_NAMESPACE: 'hollowtrees', POD_NAME: 'hollowtrees-7d9f' });
    const serving = JSON.parse(await waitForOutput(proc, /hollowtrees-k8s-drain serving/)) as { port: number; ownPod: string };
    expect(serving.ownPod).toBe('hollowtrees/hollowtrees-7d9f');
    const client = new PluginClient(`127.0.0.1:${serving.port}`);
    cleanups.push(async () => client.close());
    const answer = await client.handle({ id: 'e1', source: 'test', specversion: '1.0', type: 't', data: { labels: { node: 'node-a' } } }, { flow: 'spot', timeoutMs: 10_000 });
    expect(answer.attributes).toMatchObject({ pods_evicted: '1', pods_remaining: '0' });
    expect(kube.cluster.pods('node-a').map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['hollowtrees/hollowtrees-7d9f']);
  });

  it('warns when told to serve every interface without mTLS', async () => {
    const kube = await startKubeApiServer();
    cleanups.push(() => kube.close());
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText()), '--host', '0.0.0.0']);
    const warning = JSON.parse(await waitForOutput(proc, /anyone who can reach the port/)) as Record<string, unknown>;
    expect(warning).toMatchObject({ level: 'warn', service: 'hollowtrees-k8s-drain', host: '0.0.0.0', msg: expect.stringMatching(/^serving on 0\.0\.0\.0:\d+ without TLS: anyone who can reach the port can make this plugin act/) });
  });
});
