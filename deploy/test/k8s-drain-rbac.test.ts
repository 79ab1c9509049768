import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginClient } from '@hollowtrees/grpcplugin';
import { testEvent } from '@hollowtrees/grpcplugin/testing';
import { spawnCaptured, startKubeApiServer, tempDir, waitForOutput, type KubeApiServer } from '@hollowtrees/testkit';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessOf, granted, type Access } from './kube-access.js';
import { REPO_ROOT } from './repo.js';

// The drain plugin's ClusterRole and Role, checked against what the plugin does: the real bin drains two
// nodes (one named, one found by instance id) through gRPC, against the kube-apiserver stand-in,
// then a pool through a surge and two resolutions (which read, create and update its resolution
// marker), once with its watch caches and once without; every request it made is turned into the RBAC
// permission it needs. The shipped roles together must grant each of them, and nothing else.
const CLI = join(REPO_ROOT, 'packages/plugin-k8s-drain/dist/cli.js');
const ROLE_FILE = join(REPO_ROOT, 'deploy/kubernetes/base/k8s-drain-rbac.yaml');
const cleanups: Array<() => Promise<unknown>> = [];

function seed(kube: KubeApiServer): void {
  const owner = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-web', controller: true }];
  for (const [node, instance] of [['ip-10-0-1-23.ec2.internal', 'i-0drain1'], ['ip-10-0-1-24.ec2.internal', 'i-0drain2'], ['ip-10-0-2-41.ec2.internal', 'i-0stays']] as const) {
    kube.cluster.addNode({ metadata: { name: node }, spec: { providerID: `aws:///us-east-1a/${instance}` } });
    for (let i = 0; i < 3; i++) {
      kube.cluster.addPod({ metadata: { name: `web-${instance}-${i}`, namespace: 'shop', labels: { app: 'web' }, ownerReferences: owner }, spec: { nodeName: node, terminationGracePeriodSeconds: 2, volumes: [] } });
    }
  }
  kube.cluster.addPodDisruptionBudget({ metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 2 } });
  kube.cluster.addNode({ metadata: { name: 'ip-10-0-3-7.ec2.internal', labels: { 'node-group': 'batch' } }, spec: { providerID: 'aws:///us-east-1c/i-0batch' } });
}

/** A surge of the batch pool, then two resolutions of it, the second later: the marker is created, then updated. */
async function drainPool(client: PluginClient, output: () => string): Promise<void> {
  const at = Date.now() - 60_000;
  const events = [
    testEvent({ type: 'aws.ec2.spot.price-surge', time: new Date(at).toISOString() }),
    testEvent({ type: 'aws.ec2.spot.price-surge.resolved', time: new Date(at + 1_000).toISOString() }),
    testEvent({ type: 'aws.ec2.spot.price-surge.resolved', time: new Date(at + 2_000).toISOString() }),
  ];
  const statuses: string[] = [];
  for (const event of events) {
    const response = await client.handle(event, { flow: 'rbac-check', timeoutMs: 30_000, config: { mode: 'pool', selector: 'node-group=batch' } });
    statuses.push(`${response.status}: ${response.message}`);
  }
  // Cordoned (nothing to evict); then nothing left to undo: the node was drained, and stays cordoned.
  expect(statuses.map((s) => s.split(':')[0]), `${statuses.join('\n')}\n${output()}`).toEqual(['ok', 'skipped', 'skipped']);
}

/** Runs the bin with `flags` against a seeded stand-in, drains two nodes through it, and answers what it asked the API server. */
async function accessUsedBy(flags: readonly string[]): Promise<Set<Access>> {
  const kube = await startKubeApiServer({ token: 'drain-sa-token', msPerGraceSecond: 5 });
  cleanups.push(() => kube.close());
  seed(kube);
  const dir = await tempDir('drain-rbac');
  cleanups.push(dir.remove);
  const kubeconfig = join(dir.path, 'kubeconfig');
  await writeFile(kubeconfig, kube.kubeConfigFileText());
  const plugin = spawnCaptured('hollowtrees-k8s-drain', process.execPath, [CLI, '--port', '0', '--kubeconfig', kubeconfig, ...flags], { KUBECONFIG: '', HOME: dir.path });
  cleanups.push(() => plugin.kill());
  const { port } = JSON.parse(await waitForOutput(plugin, /hollowtrees-k8s-drain serving/, 20_000)) as { port: number };
  const client = new PluginClient(`127.0.0.1:${port}`);
  cleanups.push(async () => client.close());
  const targets: Array<Record<string, string>> = [{ node: 'ip-10-0-1-23.ec2.internal' }, { instance_id: 'i-0drain2' }];
  for (const labels of targets) {
    const response = await client.handle(testEvent({ labels }), { flow: 'rbac-check', timeoutMs: 30_000 });
    expect(response.status, `${JSON.stringify(labels)}: ${response.message}\n${plugin.output()}`).toBe('ok');
  }
  expect(kube.cluster.pods('ip-10-0-1-23.ec2.internal')).toEqual([]);
  expect(kube.cluster.pods('ip-10-0-1-24.ec2.internal')).toEqual([]);
  await drainPool(client, () => plugin.output());
  expect(kube.cluster.leases.all()).toHaveLength(1);
  await plugin.kill();
  return new Set(kube.requests.map(accessOf));
}

/** What the file's ClusterRole and Role grant together (the Role's Leases are in the plugin's namespace only). */
async function shippedRole(): Promise<Set<Access>> {
  const objects = parseAllDocuments(await readFile(ROLE_FILE, 'utf8')).map((d) => d.toJS() as { kind: string; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> });
  const all = new Set<Access>();
  for (const kind of ['ClusterRole', 'Role']) {
    const role = objects.find((o) => o.kind === kind);
    if (!role?.rules) throw new Error(`${ROLE_FILE} has no ${kind} with rules`);
    for (const access of granted(role.rules)) all.add(access);
  }
  return all;
}

describe('the drain plugin ClusterRole and Role (deploy/kubernetes/base/k8s-drain-rbac.yaml)', () => {
  let used: Set<Access>;
  beforeAll(async () => {
    used = new Set([...(await accessUsedBy([])), ...(await accessUsedBy(['--watch-cache', 'false']))]);
  }, 120_000);
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('grants every permission a drain used', async () => {
    const role = await shippedRole();
    expect([...used].filter((a) => !role.has(a)).sort()).toEqual([]);
  });

  it('grants nothing a drain did not use', async () => {
    const role = await shippedRole();
    expect([...role].filter((a) => !used.has(a)).sort()).toEqual([]);
  });
});

describe('deriving permissions from requests', () => {
  it('names verb and resource as the API server does', () => {
    const of = (method: string, path: string, query: Record<string, string> = {}): Access => accessOf({ method, path, query });
    expect(of('GET', '/api/v1/nodes')).toBe(':nodes:list');
    expect(of('GET', '/api/v1/nodes', { watch: 'true' })).toBe(':nodes:watch');
    expect(of('GET', '/api/v1/nodes/n1')).toBe(':nodes:get');
    expect(of('PATCH', '/api/v1/nodes/n1')).toBe(':nodes:patch');
    expect(of('GET', '/api/v1/namespaces/shop/pods', { fieldSelector: 'spec.nodeName=n1' })).toBe(':pods:list');
    expect(of('POST', '/api/v1/namespaces/shop/pods/web-0/eviction')).toBe(':pods/eviction:create');
    expect(of('DELETE', '/api/v1/namespaces/shop/pods/web-0')).toBe(':pods:delete');
    expect(of('PUT', '/apis/coordination.k8s.io/v1/namespaces/hollowtrees/leases/l1')).toBe('coordination.k8s.io:leases:update');
    expect(granted([{ apiGroups: [''], resources: ['nodes', 'pods'], verbs: ['get', 'list'] }])).toEqual(new Set([':nodes:get', ':nodes:list', ':pods:get', ':pods:list']));
  });
});
