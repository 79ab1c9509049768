import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '@hollowtrees/core';
import { parseDuration } from '@hollowtrees/grpcplugin';
import { makeTestCertificates, tempDir } from '@hollowtrees/testkit';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasKubectl, render, renderComposed, validateAgainstSchema, type KubeObject } from './manifests.js';
import { journalDiskBudget } from './journal-disk-budget.js';
import { coreMemoryBudget, memoryBytes } from './memory-budget.js';
import { containerPolicyBreaches, excludedSpotLabels, longRunningContainers, podSpecOf, type Container, type PodSpec } from './pod-policy.js';
import { REPO_ROOT } from './repo.js';

const KUBE = join(REPO_ROOT, 'deploy/kubernetes');
const OVERLAYS = readdirSync(join(KUBE, 'overlays'));
const BINARIES = ['hollowtrees', 'hollowtrees-k8s-drain', 'hollowtrees-aws-spot', 'hollowtrees-node-watcher'];
const NAMESPACE = 'hollowtrees';
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass']);
const run = promisify(execFile);

if (!hasKubectl) {
  const message = 'kubectl is not installed: the Kustomize manifests are NOT rendered or validated (install kubectl to run deploy/test/kubernetes-manifests.test.ts)';
  if (process.env['CI'] === 'true') throw new Error(message);
  console.warn(`\n!!! SKIPPED: ${message}\n`);
}

const find = (objects: KubeObject[], kind: string, name: string): KubeObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
};
const corePod = (objects: KubeObject[]): PodSpec => podSpecOf(find(objects, 'Deployment', 'hollowtrees'))!;
const container = (pod: PodSpec, name: string): Container & { env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>; volumeMounts?: Array<{ name: string }> } => {
  const found = longRunningContainers(pod).find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
};
/** Every exec probe command of a container. */
const execProbes = (c: Container): string[][] =>
  [c.livenessProbe, c.readinessProbe].flatMap((p) => ((p as { exec?: { command: string[] } } | undefined)?.exec ? [(p as { exec: { command: string[] } }).exec.command] : []));

/** Every README a user follows: the repository's, and each package's and example's. */
const READMES = ['README.md', ...['packages', 'examples'].flatMap((top) => readdirSync(join(REPO_ROOT, top)).map((name) => join(top, name, 'README.md')))].filter((file) => existsSync(join(REPO_ROOT, file)));

it('no README applies an overlay of the checkout as it is: its image, hollowtrees:0.1.0, is pulled from nowhere', async () => {
  const direct: string[] = [];
  for (const file of READMES) {
    const text = await readFile(join(REPO_ROOT, file), 'utf8');
    for (const [command, path] of text.matchAll(/kubectl apply -k (\S+)/g)) if (path!.startsWith('deploy/')) direct.push(`${file}: ${command}`);
  }
  expect(direct).toEqual([]);
});

describe.skipIf(!hasKubectl)('the Kustomize manifests (deploy/kubernetes)', () => {
  const variants: Record<string, KubeObject[]> = {};
  beforeAll(async () => {
    for (const overlay of OVERLAYS) variants[`overlays/${overlay}`] = await render(join(KUBE, 'overlays', overlay));
    variants['base + components/service-monitor'] = await renderComposed([join(KUBE, 'base')], [join(KUBE, 'components/service-monitor')]);
  }, 60_000);

  it("the README's install commands apply every container from the image they pushed", async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const commands = /```sh\n(docker build [\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const pushed = /docker push (\S+)/.exec(commands)?.[1];
    const applied = /^kubectl apply -k (\S+)$/m.exec(commands)?.[1] ?? '';
    // A kustomization the commands write (in the checkout's root) is written elsewhere, its path to deploy/ made relative to where it is.
    const written = /^mkdir -p \S+ && cat > (\S+)\/kustomization\.yaml <<'EOF'\n([\s\S]*?)\nEOF$/m.exec(commands);
    const user = await tempDir('readme-overlay');
    try {
      if (written?.[1] === applied) await writeFile(join(user.path, 'kustomization.yaml'), written[2]!.replaceAll('../deploy/', `${relative(user.path, join(REPO_ROOT, 'deploy'))}/`));
      const pods = (await render(written?.[1] === applied ? user.path : join(REPO_ROOT, applied))).flatMap((o) => podSpecOf(o) ?? []);
      const images = new Set(pods.flatMap((pod) => [...(pod.initContainers ?? []), ...pod.containers].map((c) => (c as { image?: string }).image)));
      expect(pods.length).toBeGreaterThan(0);
      expect([...images]).toEqual([pushed]);
    } finally {
      await user.remove();
    }
  });

  it('has the overlays the README documents', () => {
    expect(OVERLAYS.sort()).toEqual(['ha', 'node-watcher', 'plugins-mtls', 'prometheus-alerts', 'sqs']);
  });

  it('renders every variant into objects that each validate against the Kubernetes schema of their kind', async () => {
    for (const [variant, objects] of Object.entries(variants)) {
      expect(objects.length, variant).toBeGreaterThan(5);
      const failures: string[] = [];
      for (const object of objects) await validateAgainstSchema(object).catch((err: Error) => failures.push(`${variant}: ${err.message}`));
      expect(failures).toEqual([]);
    }
    expect(variants['base + components/service-monitor']!.map((o) => o.kind)).toEqual(expect.arrayContaining(['ServiceMonitor', 'PrometheusRule']));
  });

  it("components/service-monitor's PrometheusRule holds exactly the alerts of examples/prometheus/hollowtrees-rules.yml", async () => {
    const rule = find(variants['base + components/service-monitor']!, 'PrometheusRule', 'hollowtrees') as KubeObject & { spec: unknown };
    expect(rule.spec).toEqual(parse(await readFile(join(REPO_ROOT, 'examples/prometheus/hollowtrees-rules.yml'), 'utf8')));
  });

  it('puts every namespaced object in the hollowtrees namespace, which it creates', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      find(objects, 'Namespace', NAMESPACE);
      const astray = objects.filter((o) => !CLUSTER_SCOPED.has(o.kind) && o.metadata.namespace !== NAMESPACE).map((o) => `${variant}: ${o.kind}/${o.metadata.name}`);
      expect(astray).toEqual([]);
    }
  });

  it('gives every container of every workload resources, probes and the restricted security settings', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      const workloads = objects.filter((o) => podSpecOf(o));
      expect(workloads.length, variant).toBeGreaterThan(0);
      expect(workloads.flatMap((w) => containerPolicyBreaches(`${variant} ${w.kind}/${w.metadata.name}`, podSpecOf(w)!))).toEqual([]);
    }
  });

  it('runs every container as `node /app/bin/<binary>.mjs` (the image entrypoint is node, so SIGTERM reaches it)', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      for (const w of objects.filter((o) => podSpecOf(o))) {
        for (const c of longRunningContainers(podSpecOf(w)!)) {
          expect((c as { command?: string[] }).command, `${variant} ${c.name}`).toBeUndefined();
          expect(BINARIES.map((b) => `/app/bin/${b}.mjs`), `${variant} ${c.name}`).toContain(c.args?.[0]);
        }
      }
    }
  });

  it('keeps core (and a plugin of its own) off spot nodes, spread over zones, at system-cluster-critical', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
        const pod = podSpecOf(deployment)!;
        const at = `${variant} ${deployment.metadata.name}`;
        expect(pod.priorityClassName, at).toBe('system-cluster-critical');
        expect(excludedSpotLabels(pod), at).toEqual(expect.arrayContaining(['eks.amazonaws.com/capacityType', 'karpenter.sh/capacity-type', 'cloud.google.com/gke-spot', 'cloud.google.com/gke-preemptible', 'kubernetes.azure.com/scalesetpriority']));
        expect(pod.topologySpreadConstraints?.map((t) => t.topologyKey), at).toContain('topology.kubernetes.io/zone');
      }
      const pdb = find(objects, 'PodDisruptionBudget', 'hollowtrees') as unknown as { spec: { selector: { matchLabels: Record<string, string> } } };
      expect(pdb.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'hollowtrees' });
    }
  });

  it('tells the drain plugin its own pod (POD_NAMESPACE, POD_NAME from the downward API), so a drain of its node leaves it', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      const drains = objects.flatMap((o) => {
        const pod = podSpecOf(o);
        return pod ? [...(pod.initContainers ?? []), ...pod.containers].filter((c) => c.args?.[0] === '/app/bin/hollowtrees-k8s-drain.mjs') : [];
      });
      expect(drains.length, variant).toBe(1);
      const env = (drains[0] as { env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }> }).env ?? [];
      expect(env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]), variant).toEqual(expect.arrayContaining([['POD_NAMESPACE', 'metadata.namespace'], ['POD_NAME', 'metadata.name']]));
    }
  });

  it('keeps core taking alerts for 5 s after it is told to stop, while the Service drops it, and waits that long more for it', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      const pod = corePod(objects);
      const core = container(pod, 'core') as { lifecycle?: { preStop?: { exec?: { command?: string[] } } } };
      expect(core.lifecycle?.preStop?.exec?.command, variant).toEqual(['/nodejs/bin/node', '-e', 'setTimeout(() => {}, 5000)']);
      // The preStop pause, then core's shutdownGracePeriod (90s), then the exit.
      expect(pod.terminationGracePeriodSeconds, variant).toBeGreaterThanOrEqual(5 + 90 + 5);
    }
  });

  it.each([
    ['hollowtrees-k8s-drain', 'k8s-drain'],
    ['hollowtrees-aws-spot', 'aws-spot'],
  ])("lets a rolling update of the plugin's own pods %s (plugins-mtls) finish the calls in flight: as long as core waits for them, and the pod longer", (deployment, plugin) => {
    const objects = variants['overlays/plugins-mtls']!;
    const pod = podSpecOf(find(objects, 'Deployment', deployment))!;
    const args = container(pod, plugin).args ?? [];
    const shutdownMs = parseDuration(args[args.indexOf('--shutdown-timeout') + 1] ?? '') ?? 0;
    const text = (find(objects, 'ConfigMap', configMapName(corePod(objects), objects)) as unknown as { data: Record<string, string> }).data['config.yaml']!;
    const { config } = parseConfig(text, 'overlays/plugins-mtls config.yaml', {});
    // Cut short at the SDK's 30 s default, a drain was retried on the new pod: an attempt spent, the drain started over.
    expect(shutdownMs).toBeGreaterThanOrEqual(config.plugins[plugin]!.timeout);
    expect((pod.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThanOrEqual(shutdownMs + 5_000);
  });

  it('gives core 5 minutes to start before liveness counts: it answers only once its state is loaded', () => {
    for (const [variant, objects] of Object.entries(variants)) {
      const core = container(corePod(objects), 'core') as { startupProbe?: { httpGet?: { path?: string }; periodSeconds?: number; failureThreshold?: number } };
      expect(core.startupProbe?.httpGet?.path, variant).toBe('/-/healthy');
      expect((core.startupProbe?.periodSeconds ?? 10) * (core.startupProbe?.failureThreshold ?? 3), variant).toBeGreaterThanOrEqual(300);
    }
  });

  it("gives core the memory its configuration's limits let senders fill, so it refuses them with 503s rather than being OOM-killed", () => {
    const mib = (bytes: number): string => `${Math.ceil(bytes / 1024 ** 2)} MiB`;
    const short: string[] = [];
    for (const [variant, objects] of Object.entries(variants)) {
      const pod = corePod(objects);
      const text = (find(objects, 'ConfigMap', configMapName(pod, objects)) as unknown as { data: Record<string, string> }).data['config.yaml']!;
      const { config } = parseConfig(text, `${variant} config.yaml`, { SQS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111122223333/hollowtrees-notices' });
      const limit = memoryBytes(container(pod, 'core').resources!.limits!['memory']!);
      const budget = coreMemoryBudget(config, (find(objects, 'Deployment', 'hollowtrees') as unknown as { spec: { replicas: number } }).spec.replicas);
      if (limit < budget) short.push(`${variant}: core's memory limit is ${mib(limit)}, its configuration lets senders make it hold ${mib(budget)}`);
    }
    expect(short).toEqual([]);
  });

  it("keeps run state across a restart of core's container in every variant: a journal on the pod's volume, or Leases (ha)", () => {
    const backends: Record<string, string> = {};
    for (const [variant, objects] of Object.entries(variants)) {
      const text = (find(objects, 'ConfigMap', configMapName(corePod(objects), objects)) as unknown as { data: Record<string, string> }).data['config.yaml']!;
      backends[variant] = parseConfig(text, `${variant} config.yaml`, { SQS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111122223333/hollowtrees-notices' }).config.state.backend;
    }
    // In memory, a restart (an OOM kill, a failed liveness probe) forgot every cooldown: the next re-send of a reclaim alert drained its node again.
    expect(backends).toEqual(Object.fromEntries(Object.keys(variants).map((v) => [v, v === 'overlays/ha' ? 'kubernetes' : 'file'])));
    const haVolumes = (corePod(variants['overlays/ha']!) as PodSpec & { volumes?: Array<{ name: string }> }).volumes?.map((v) => v.name);
    expect(haVolumes).not.toContain('state');
  });

  it("gives core's run journal a volume that holds it at its largest, so kubelet never evicts the pod (and the journal with it) for filling it", () => {
    const short: string[] = [];
    for (const [variant, objects] of Object.entries(variants)) {
      const pod = corePod(objects);
      const text = (find(objects, 'ConfigMap', configMapName(pod, objects)) as unknown as { data: Record<string, string> }).data['config.yaml']!;
      const { config } = parseConfig(text, `${variant} config.yaml`, { SQS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111122223333/hollowtrees-notices' });
      if (!config.state.file) continue;
      const sizeLimit = emptyDirLimit(pod, 'core', config.state.file);
      if (!sizeLimit) short.push(`${variant}: state.file ${config.state.file} is on no emptyDir with a sizeLimit`);
      else if (memoryBytes(sizeLimit) < journalDiskBudget(config)) short.push(`${variant}: the journal's volume holds ${sizeLimit}, the journal may need ${Math.ceil(journalDiskBudget(config) / 1024 ** 2)} MiB`);
    }
    expect(short).toEqual([]);
  });

  it('runs the plugins as native sidecars on 127.0.0.1 only, probed from inside the pod; the Service reaches core alone', () => {
    for (const [variant, objects] of Object.entries(variants).filter(([v]) => v !== 'overlays/plugins-mtls')) {
      const pod = corePod(objects);
      expect(pod.initContainers?.map((c) => [c.name, c.restartPolicy]), variant).toEqual([
        ['k8s-drain', 'Always'],
        ['aws-spot', 'Always'],
      ]);
      for (const [name, port] of [['k8s-drain', '9000'], ['aws-spot', '9001']] as const) {
        const c = container(pod, name);
        const args = c.args!;
        expect(args[args.indexOf('--host') + 1], `${variant} ${name}`).toBe('127.0.0.1');
        expect(args[args.indexOf('--port') + 1], `${variant} ${name}`).toBe(port);
        expect(c.ports, `${variant} ${name}`).toBeUndefined();
        // Liveness only: a plugin that is down must not take core (and every flow) out of the Service.
        expect(execProbes(c), `${variant} ${name}`).toEqual([['/nodejs/bin/node', '/app/bin/tcp-probe.mjs', `127.0.0.1:${port}`]]);
        expect(c.readinessProbe, `${variant} ${name}`).toBeUndefined();
      }
      const config = parse((find(objects, 'ConfigMap', configMapName(pod, objects)) as unknown as { data: Record<string, string> }).data['config.yaml']!) as { plugins: Record<string, { address: string }> };
      expect(config.plugins['k8s-drain']!.address).toBe('127.0.0.1:9000');
      expect(config.plugins['aws-spot']!.address).toBe('127.0.0.1:9001');
      const service = find(objects, 'Service', 'hollowtrees') as unknown as { spec: { ports: Array<{ port: number; targetPort: string }> } };
      expect(service.spec.ports).toEqual([{ name: 'http', port: 9092, targetPort: 'http' }]);
      expect((container(pod, 'core').ports as Array<{ name: string; containerPort: number }>)).toEqual([{ name: 'http', containerPort: 9092 }]);
    }
  });

  it("lets only pods of namespaces labelled as alert senders reach core's receiver, which the README's install commands label", async () => {
    const senders = { from: [{ namespaceSelector: { matchLabels: { 'hollowtrees.io/alert-sender': 'true' } } }], ports: [{ port: 'http' }] };
    for (const [variant, objects] of Object.entries(variants)) {
      const policy = find(objects, 'NetworkPolicy', 'hollowtrees') as unknown as { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: unknown[] } };
      const deployment = find(objects, 'Deployment', 'hollowtrees') as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } };
      expect(deployment.spec.template.metadata.labels, variant).toMatchObject(policy.spec.podSelector.matchLabels);
      expect(policy.spec.policyTypes, variant).toEqual(['Ingress']);
      expect((container(corePod(objects), 'core').ports as Array<{ name: string }>).map((p) => p.name), variant).toContain('http');
      // node-watcher: its watchers send from the host network, node addresses no policy can tell apart (open, with server.auth advised).
      expect(policy.spec.ingress, variant).toEqual(variant === 'overlays/node-watcher' ? [senders, { ports: [{ port: 'http' }] }] : [senders]);
    }
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const commands = /```sh\n(docker build [\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(commands).toMatch(/^kubectl label namespace \S+ hollowtrees\.io\/alert-sender=true(\s|$)/m);
  });

  it('mounts the service account token only in the containers that call the Kubernetes API', () => {
    const mounts = (objects: KubeObject[]): string[] =>
      longRunningContainers(corePod(objects))
        .filter((c) => (c as { volumeMounts?: Array<{ name: string }> }).volumeMounts?.some((m) => m.name === 'kube-api-access'))
        .map((c) => c.name);
    const expected: Record<string, string[]> = { 'overlays/ha': ['k8s-drain', 'core'], 'overlays/plugins-mtls': [] };
    for (const [variant, objects] of Object.entries(variants)) {
      expect((corePod(objects) as { automountServiceAccountToken?: boolean }).automountServiceAccountToken, variant).toBe(false);
      // ha: core holds its run state in Leases; plugins-mtls: the drain has a pod of its own.
      expect(mounts(objects), variant).toEqual(expected[variant] ?? ['k8s-drain']);
    }
  });

  it('ha: three replicas naming themselves by pod, a Role on Leases in their namespace only, the base config plus the Kubernetes state backend', async () => {
    const objects = variants['overlays/ha']!;
    expect((find(objects, 'Deployment', 'hollowtrees') as unknown as { spec: { replicas: number } }).spec.replicas).toBe(3);
    expect(container(corePod(objects), 'core').env).toContainEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect((find(objects, 'Role', 'hollowtrees-state') as unknown as { rules: unknown }).rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'create', 'update', 'delete'] }]);
    expect((find(objects, 'RoleBinding', 'hollowtrees-state') as unknown as { subjects: unknown }).subjects).toEqual([{ kind: 'ServiceAccount', name: 'hollowtrees', namespace: NAMESPACE }]);
    const ha = parse(await readFile(join(KUBE, 'overlays/ha/config.yaml'), 'utf8')) as Record<string, unknown>;
    const base = parse(await readFile(join(KUBE, 'base/config.yaml'), 'utf8')) as Record<string, unknown>;
    // The base's state settings, with the Kubernetes backend and fewer groups (every Lease is listed at each sweep); everything else is the base's: the two files cannot drift apart.
    // The base's journal aside: the Leases replace it.
    const { file: _file, ...baseState } = base['state'] as Record<string, unknown>;
    expect(ha['state']).toEqual({ ...baseState, maxGroups: 50_000, backend: 'kubernetes', kubernetes: { namespace: NAMESPACE, leasePrefix: 'hollowtrees-', leaseDuration: '30s', renewInterval: '10s' } });
    const { state: _state, ...rest } = ha;
    const { state: _baseState, ...baseRest } = base;
    expect(rest).toEqual(baseRest);
  });

  it('node-watcher: a DaemonSet on every node at system-node-critical, with its node name, sending to the Service', () => {
    const objects = variants['overlays/node-watcher']!;
    const pod = podSpecOf(find(objects, 'DaemonSet', 'hollowtrees-node-watcher'))!;
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const watcher = container(pod, 'node-watcher');
    expect(watcher.args![0]).toBe('/app/bin/hollowtrees-node-watcher.mjs');
    expect(watcher.args![watcher.args!.indexOf('--core-url') + 1]).toBe('http://hollowtrees.hollowtrees.svc:9092');
    expect(watcher.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    // --state-file on an emptyDir (the root filesystem is read-only), which a container's restart keeps.
    expect(emptyDirLimit(pod, 'node-watcher', watcher.args![watcher.args!.indexOf('--state-file') + 1]!)).toBe('1Mi');
    expect((pod as { automountServiceAccountToken?: boolean }).automountServiceAccountToken).toBe(false);
    // The watcher needs no RBAC: the only roles are the drain's (its ClusterRole and its Role for the pools' Leases, each with its binding).
    expect(objects.filter((o) => o.kind.includes('Role')).map((o) => o.metadata.name).sort()).toEqual(['hollowtrees-k8s-drain', 'hollowtrees-k8s-drain', 'hollowtrees-k8s-drain-pools', 'hollowtrees-k8s-drain-pools']);
  });

  it.each(['10.0.1.23', 'fd00:10::17'])("node-watcher: the watcher takes its --listen with the node's address %s in it (IPv4 and single-stack IPv6 clusters)", async (hostIp) => {
    const pod = podSpecOf(find(variants['overlays/node-watcher']!, 'DaemonSet', 'hollowtrees-node-watcher'))!;
    // The kubelet expands $(HOST_IP) in the args; the rest of the args are swapped for a quick exit: --once against no metadata service.
    const args = container(pod, 'node-watcher').args!;
    const listen = args[args.indexOf('--listen') + 1]!.replaceAll('$(HOST_IP)', hostIp);
    const bin = join(REPO_ROOT, 'packages/node-watcher/dist/cli.js');
    const exit = await run(process.execPath, [bin, '--listen', listen, '--once', '--dry-run', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1']).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    // Exit 2 is a usage error; 1 is the metadata service not answering, which means the flags were taken.
    expect(exit).toMatchObject({ code: 1, stderr: expect.not.stringContaining('--listen') });
  });

  it("node-watcher: the readiness probe fails while the watcher cannot read the instance identity, the liveness probe does not", async () => {
    const watcher = container(podSpecOf(find(variants['overlays/node-watcher']!, 'DaemonSet', 'hollowtrees-node-watcher'))!, 'node-watcher');
    const path = (probe: unknown): string => (probe as { httpGet: { path: string } }).httpGet.path;
    // The real watcher with no metadata service to answer (a blocked IMDS, a wrong --cloud): it retries the identity for ever.
    const bin = join(REPO_ROOT, 'packages/node-watcher/dist/cli.js');
    const child = spawn(process.execPath, [bin, '--dry-run', '--cloud', 'aws', '--metadata-url', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const found = /"health_port":(\d+)/.exec(out);
          if (found) resolve(found[1]!);
        });
        child.once('exit', (code) => reject(new Error(`the watcher exited (${code}) before serving its probes: ${out}`)));
      });
      const status = async (probe: unknown): Promise<number> => (await fetch(`http://127.0.0.1:${port}${path(probe)}`)).status;
      expect(await status(watcher.readinessProbe)).toBe(503);
      expect(await status(watcher.livenessProbe)).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('plugins-mtls: each plugin in its own Deployment, serving every interface only with mTLS, reachable from core alone', async () => {
    const objects = variants['overlays/plugins-mtls']!;
    expect(corePod(objects).initContainers ?? []).toEqual([]);
    expect(container(corePod(objects), 'core').volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/hollowtrees/tls', readOnly: true });
    for (const [name, port, clientCaFlag] of [['k8s-drain', 9000, '--tls-client-ca'], ['aws-spot', 9001, '--tls-ca']] as const) {
      const pod = podSpecOf(find(objects, 'Deployment', `hollowtrees-${name}`))!;
      expect((pod as { serviceAccountName?: string }).serviceAccountName).toBe(`hollowtrees-${name}`);
      const args = container(pod, name).args!;
      const flag = (f: string): string | undefined => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);
      expect([flag('--host'), flag('--port'), flag('--tls-cert'), flag('--tls-key'), flag(clientCaFlag)]).toEqual(['0.0.0.0', String(port), '/etc/hollowtrees/tls/tls.crt', '/etc/hollowtrees/tls/tls.key', '/etc/hollowtrees/tls/ca.crt']);
      const policy = find(objects, 'NetworkPolicy', `hollowtrees-${name}`) as unknown as { spec: { ingress: unknown } };
      expect(policy.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'hollowtrees' } } }], ports: [{ port: 'grpc' }] }]);
    }
    // The drain's roles go with it to its own service account: the ClusterRole, and the Role for the pools' resolution Leases.
    for (const kind of ['ClusterRoleBinding', 'RoleBinding'] as const) {
      const name = kind === 'RoleBinding' ? 'hollowtrees-k8s-drain-pools' : 'hollowtrees-k8s-drain';
      expect((find(objects, kind, name) as unknown as { subjects: unknown }).subjects).toEqual([{ kind: 'ServiceAccount', name: 'hollowtrees-k8s-drain', namespace: NAMESPACE }]);
    }
    const mtls = parse(await readFile(join(KUBE, 'overlays/plugins-mtls/config.yaml'), 'utf8')) as { plugins: Record<string, { address: string; tls: unknown }> };
    const base = parse(await readFile(join(KUBE, 'base/config.yaml'), 'utf8')) as Record<string, unknown>;
    const tls = { ca: '/etc/hollowtrees/tls/ca.crt', cert: '/etc/hollowtrees/tls/tls.crt', key: '/etc/hollowtrees/tls/tls.key' };
    expect(mtls.plugins['k8s-drain']).toMatchObject({ address: 'hollowtrees-k8s-drain.hollowtrees.svc:9000', tls });
    expect(mtls.plugins['aws-spot']).toMatchObject({ address: 'hollowtrees-aws-spot.hollowtrees.svc:9001', tls });
    expect({ ...mtls, plugins: undefined }).toEqual({ ...base, plugins: undefined });
  });

  it("core's own validate accepts overlays/plugins-mtls/config.yaml, given the certificate files it names", async () => {
    const certs = makeTestCertificates();
    const dir = await tempDir('mtls-config');
    try {
      const files = { 'ca.crt': certs.ca.cert, 'tls.crt': certs.client.cert, 'tls.key': certs.client.key };
      for (const [file, pem] of Object.entries(files)) await writeFile(join(dir.path, file), pem);
      const config = join(dir.path, 'config.yaml');
      await writeFile(config, (await readFile(join(KUBE, 'overlays/plugins-mtls/config.yaml'), 'utf8')).replaceAll('/etc/hollowtrees/tls/', `${dir.path}/`));
      const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'packages/core/dist/cli.js'), 'validate', '--config', config]);
      expect(stdout).toContain('valid');
    } finally {
      await dir.remove();
    }
  });

  it.each([
    ['base/config.yaml', {}],
    ['overlays/node-watcher/config.yaml', {}],
    ['overlays/ha/config.yaml', {}],
    ['overlays/sqs/config.yaml', { SQS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111122223333/hollowtrees-notices' }],
  ])("core's own validate accepts %s", async (file, env) => {
    const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'packages/core/dist/cli.js'), 'validate', '--config', join(KUBE, file)], { env: { ...process.env, ...env } });
    expect(stdout).toContain(`${join(KUBE, file)}: valid`);
  });
});

/** The ConfigMap the core pod mounts (its name carries kustomize's hash). */
function configMapName(pod: PodSpec, objects: KubeObject[]): string {
  const name = (pod as { volumes?: Array<{ name: string; configMap?: { name: string } }> }).volumes?.find((v) => v.name === 'config')?.configMap?.name;
  if (!name) throw new Error('the core pod mounts no config ConfigMap');
  find(objects, 'ConfigMap', name);
  return name;
}

/** The sizeLimit of the emptyDir that `containerName` of `pod` keeps `file` on; undefined when it is on none. */
function emptyDirLimit(pod: PodSpec, containerName: string, file: string): string | undefined {
  const mount = (container(pod, containerName) as { volumeMounts?: Array<{ name: string; mountPath: string }> }).volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
  return (pod as PodSpec & { volumes?: Array<{ name: string; emptyDir?: { sizeLimit?: string } }> }).volumes?.find((v) => v.name === mount?.name)?.emptyDir?.sizeLimit;
}

describe('the checks themselves', () => {
  it('the schema check rejects a wrong type and a kind it has no schema for', async () => {
    const deployment: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'broken' },
      spec: { replicas: 'three', selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [{ name: 'c', image: 'x' }] } } },
    };
    await expect(validateAgainstSchema(deployment)).rejects.toThrow(/Deployment broken: .*replicas must be integer/);
    await expect(validateAgainstSchema({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).rejects.toThrow('Widget w: no schema for example.com/v1 Widget');
  });

  it('the container policy names every breach of a container without settings', () => {
    const pod: PodSpec = { containers: [{ name: 'bare', args: [] }], initContainers: [{ name: 'side', restartPolicy: 'Always', securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] }, seccompProfile: { type: 'RuntimeDefault' } }, resources: { requests: { cpu: '1m', memory: '1Mi' }, limits: { memory: '1Mi' } }, livenessProbe: {}, readinessProbe: {} }] };
    expect(containerPolicyBreaches('w', pod)).toEqual([
      "w/side: a readiness probe, which would make the pod's readiness its own",
      'w/side: capabilities: ALL not dropped, or some added',
      'w/bare: no cpu and memory requests',
      'w/bare: no memory limit',
      'w/bare: no liveness and readiness probes',
      'w/bare: runAsNonRoot is not true',
      'w/bare: readOnlyRootFilesystem is not true',
      'w/bare: allowPrivilegeEscalation is not false',
      'w/bare: capabilities: ALL not dropped, or some added',
      'w/bare: seccomp profile is not RuntimeDefault',
    ]);
  });
});
