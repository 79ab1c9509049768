import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { Code, PluginClient } from '@hollowtrees/grpcplugin';
import { busyPort, spawnCaptured, startKubeApiServer, startTcpRelay, tempDir, waitForOutput, runRefusing, usageRefusal, type Spawned } from '@hollowtrees/testkit';
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

/** A kube-apiserver stand-in, closed after the test. */
async function startKubeApiServerCleaned(): Promise<Awaited<ReturnType<typeof startKubeApiServer>>> {
  const kube = await startKubeApiServer();
  cleanups.push(() => kube.close());
  return kube;
}

async function kubeconfigFor(text: string): Promise<string> {
  const path = join(await workDir(), 'kubeconfig');
  await writeFile(path, text);
  return path;
}

describe('hollowtrees-k8s-drain', () => {
  it('--version, --help and a usage error load neither gRPC nor @kubernetes/client-node: they answer at once', () => {
    const refusing = (...args: string[]) => runRefusing(['@grpc/grpc-js', '@kubernetes/client-node'], CLI, args);
    expect(refusing('--version')).toMatchObject({ status: 0, stdout: '0.1.0\n', stderr: '' });
    expect(refusing('--help')).toMatchObject({ status: 0, stderr: '' });
    expect(refusing('--nope')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^hollowtrees-k8s-drain: Unknown option '--nope'/) });
    // The hook does refuse them where they are needed.
    expect(refusing('--port', '0').stderr).toContain(' was loaded');
  });

  it('a usage error names the argument and how to get help, on two lines of stderr, and exits 2, as every Hollowtrees bin answers one', () => {
    for (const [args, said] of [
      [['--nope'], "Unknown option '--nope'"],
      [['--port', '70000'], '--port must be an integer from 0 to 65535, got "70000"'],
      [['extra'], "Unexpected argument 'extra'. This command does not take positional arguments"],
    ] as const) {
      expect(spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 })).toMatchObject(usageRefusal('hollowtrees-k8s-drain', said));
    }
  });

  it('exits 2 at start, saying so, when no kubeconfig is found', async () => {
    const proc = await run([]);
    expect(await proc.exited).toBe('code 2');
    expect(proc.output()).toMatch(/^hollowtrees-k8s-drain: no usable Kubernetes credentials: no kubeconfig found: \$KUBECONFIG is unset, ~\/\.kube\/config does not exist/);
  });

  it('exits 2 at start naming the kubeconfig and where it was named (--kubeconfig, $KUBECONFIG) when it is missing or is no kubeconfig', async () => {
    const dir = await workDir();
    const [missing, notKubeconfig] = [join(dir, 'missing'), await kubeconfigFor('just: some yaml\n')];
    // A current-context left naming a context since deleted: it does name one, just none the file has.
    const dangling = await kubeconfigFor('current-context: gone\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n- name: b\n  context: {cluster: c, user: u}\n');
    const [byFlag, byEnv, notOne, danglingCurrent] = await Promise.all([
      run(['--kubeconfig', missing]),
      run([], { KUBECONFIG: missing }),
      run(['--kubeconfig', notKubeconfig]),
      run([], { KUBECONFIG: dangling }),
    ]);
    // Found by the default chain in ~/.kube/config: named as such, the file the operator would not think of.
    const home = await workDir();
    await mkdir(join(home, '.kube'));
    await writeFile(join(home, '.kube', 'config'), 'just: some yaml\n');
    const byHome = await run([], { HOME: home });
    for (const proc of [byFlag, byEnv, notOne, danglingCurrent, byHome]) expect(await proc.exited).toBe('code 2');
    const said = (what: string) => new RegExp(`^hollowtrees-k8s-drain: no usable Kubernetes credentials: ${what.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\nSet --kubeconfig`);
    expect(byFlag.output()).toMatch(said(`--kubeconfig ${missing}: no such file or directory`));
    expect(byEnv.output()).toMatch(said(`$KUBECONFIG ${missing}: no such file or directory`));
    expect(notOne.output()).toMatch(said(`--kubeconfig ${notKubeconfig}: it names no current-context and has no contexts: is it a kubeconfig?`));
    expect(byHome.output()).toMatch(said(`~/.kube/config ${join(home, '.kube', 'config')}: it names no current-context and has no contexts: is it a kubeconfig?`));
    expect(danglingCurrent.output()).toMatch(said(`$KUBECONFIG ${dangling}: its current-context "gone" is none of its contexts: pass --context (it has: a, b)`));
   }, 60_000);

  it('exits 2 at start naming the file of a $KUBECONFIG list that is missing, and a kubeconfig that is a directory, with where it was named', async () => {
    const dir = await workDir();
    const [good, missing] = [await kubeconfigFor('current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n'), join(dir, 'missing')];
    const [inList, flagDir, envDir] = await Promise.all([run([], { KUBECONFIG: `${good}${delimiter}${missing}` }), run(['--kubeconfig', dir]), run([], { KUBECONFIG: dir })]);
    for (const proc of [inList, flagDir, envDir]) expect(await proc.exited).toBe('code 2');
    const said = (what: string) => `hollowtrees-k8s-drain: no usable Kubernetes credentials: ${what}\nSet --kubeconfig`;
    expect(inList.output()).toContain(said(`$KUBECONFIG ${missing} (one of ${good}${delimiter}${missing}): no such file or directory`));
    expect(flagDir.output()).toContain(said(`--kubeconfig ${dir}: it is a directory, not a file`));
    expect(envDir.output()).toContain(said(`$KUBECONFIG ${dir}: it is a directory, not a file`));
  }, 30_000);

  it('exits 2 at start saying what is wrong with a $KUBECONFIG that lists no file, only empty entries (":"), not the client\'s TypeError', async () => {
    const [one, two] = await Promise.all([run([], { KUBECONFIG: delimiter }), run([], { KUBECONFIG: `${delimiter}${delimiter}` })]);
    for (const proc of [one, two]) expect(await proc.exited).toBe('code 2');
    const said = (value: string) =>
      `hollowtrees-k8s-drain: no usable Kubernetes credentials: $KUBECONFIG ${value}: it lists no file, only empty entries: set it to a kubeconfig's path (several separated by "${delimiter}"), or unset it\nSet --kubeconfig`;
    expect(one.output()).toContain(said(delimiter));
    expect(two.output()).toContain(said(`${delimiter}${delimiter}`));
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
    expect(noContext.output()).toContain(`--kubeconfig ${kubeconfig}: it has no context "prod" (it has: testkit)`);
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

  it('exits 2 at start, naming what is missing, when only one of POD_NAMESPACE and POD_NAME is set: its own pod would not be spared', async () => {
    const [namespaceOnly, nameOnly] = await Promise.all([run([], { POD_NAMESPACE: 'hollowtrees' }), run([], { POD_NAME: 'hollowtrees-7d9f' })]);
    expect([await namespaceOnly.exited, await nameOnly.exited]).toEqual(['code 2', 'code 2']);
    const unspared = 'set both from the downward API (metadata.namespace, metadata.name), so a drain of its node never evicts the pod this plugin runs in, or neither';
    expect(namespaceOnly.output()).toBe(`hollowtrees-k8s-drain: POD_NAMESPACE is set ("hollowtrees") but POD_NAME is not: ${unspared}`);
    expect(nameOnly.output()).toBe(`hollowtrees-k8s-drain: POD_NAME is set ("hollowtrees-7d9f") but POD_NAMESPACE is not: ${unspared}`);
  });

  it('a rolling update: a SIGTERM lets the drain in flight finish while the next drain goes to the new process; each pod is evicted once', async () => {
    const kube = await startKubeApiServer();
    cleanups.push(() => kube.close());
    for (const node of ['node-a', 'node-b']) {
      kube.cluster.addNode({ metadata: { name: node } });
      // An hour's grace: each drain waits until the test ends its pod, not for a clock.
      kube.cluster.addPod({ metadata: { name: `web-${node}`, namespace: 'apps', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'web', controller: true }] }, spec: { nodeName: node, terminationGracePeriodSeconds: 3600 } });
    }
    const kubeconfig = await kubeconfigFor(kube.kubeConfigFileText());
    const [old, next] = await Promise.all(['old', 'next'].map(async () => {
      const proc = await run(['--kubeconfig', kubeconfig]);
      return { proc, port: (JSON.parse(await waitForOutput(proc, /hollowtrees-k8s-drain serving/, 15_000)) as { port: number }).port };
    }));
    // The Service in front of the plugin's pods.
    const service = await startTcpRelay(old!.port);
    const client = new PluginClient(`127.0.0.1:${service.port}`);
    cleanups.push(() => service.close(), async () => client.close());
    const drain = (node: string) => client.handle({ id: node, source: 'test', specversion: '1.0', type: 't', data: { labels: { node } } }, { flow: 'spot', timeoutMs: 30_000 });
    const evicted = (pod: string) => kube.cluster.evictions().filter((e) => e.name === pod).length;
    const endPod = async (pod: string): Promise<void> => {
      await vi.waitFor(() => expect(evicted(pod)).toBe(1), { timeout: 15_000, interval: 20 });
      kube.cluster.deletePod('apps', pod, 0);
    };

    const inFlight = drain('node-a');
    await vi.waitFor(() => expect(evicted('web-node-a')).toBe(1), { timeout: 15_000, interval: 20 });
    service.retarget(next!.port);
    old!.proc.child.kill('SIGTERM');
    expect(JSON.parse(await waitForOutput(old!.proc, /"msg":"stopping/))).toMatchObject({ shutdown_timeout_ms: 130_000 });
    const [after] = await Promise.all([drain('node-b'), endPod('web-node-b')]);
    expect(after.message).toBe('drained node node-b: 1 pods evicted');
    await endPod('web-node-a');
    expect((await inFlight).message).toBe('drained node node-a: 1 pods evicted');
    expect(await old!.proc.exited).toBe('code 0');
    expect(old!.proc.output()).toMatch(/"msg":"stopped"/);
    expect(old!.proc.output()).not.toContain('node-b');
    expect(next!.proc.output()).not.toContain('node-a');
    expect(kube.cluster.evictions().map((e) => e.name).sort()).toEqual(['web-node-a', 'web-node-b']);
  }, 60_000);

  it('cuts a drain short at --shutdown-timeout: the call fails UNAVAILABLE (core retries it), the watches close and it exits 0', async () => {
    const kube = await startKubeApiServer();
    cleanups.push(() => kube.close());
    kube.cluster.addNode({ metadata: { name: 'node-a' } });
    kube.cluster.addPod({ metadata: { name: 'web', namespace: 'apps', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'web', controller: true }] }, spec: { nodeName: 'node-a', terminationGracePeriodSeconds: 3600 } });
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText()), '--shutdown-timeout', '1s']);
    const { port } = JSON.parse(await waitForOutput(proc, /hollowtrees-k8s-drain serving/, 15_000)) as { port: number };
    const client = new PluginClient(`127.0.0.1:${port}`);
    cleanups.push(async () => client.close());
    const drain = client.handle({ id: 'e1', source: 'test', specversion: '1.0', type: 't', data: { labels: { node: 'node-a' } } }, { flow: 'spot', timeoutMs: 60_000 }).catch((err: unknown) => err);
    await vi.waitFor(() => expect(kube.cluster.evictions()).toHaveLength(1), { timeout: 15_000, interval: 20 });
    proc.child.kill('SIGTERM');
    expect(await drain).toMatchObject({ code: Code.Unavailable });
    expect(await proc.exited).toBe('code 0');
    expect(proc.output()).toMatch(/"shutdown_timeout_ms":1000,"msg":"stopping/);
  }, 30_000);

  it('a --host this machine does not have, or that does not resolve, exits 2 naming it, as core does; a port in use exits 1; grpc-js logs nothing of its own', async () => {
    const kube = await startKubeApiServer();
    cleanups.push(() => kube.close());
    const kubeconfig = await kubeconfigFor(kube.kubeConfigFileText());
    const busy = await busyPort();
    cleanups.push(() => busy.close());
    const { port } = busy;
    // Three starts side by side, each seconds on a loaded machine: hence the minute.
    const [notHere, unresolved, inUse] = await Promise.all([
      run(['--kubeconfig', kubeconfig, '--host', '192.0.2.1']),
      run(['--kubeconfig', kubeconfig, '--host', 'no-such-host.invalid']),
      run(['--kubeconfig', kubeconfig, '--port', String(port)]),
    ]);
    expect([await notHere.exited, await unresolved.exited, await inUse.exited]).toEqual(['code 2', 'code 2', 'code 1']);
    expect(notHere.output()).toBe('hollowtrees-k8s-drain: --host 192.0.2.1: no interface of this machine has that address');
    expect(unresolved.output()).toBe('hollowtrees-k8s-drain: --host no-such-host.invalid: the host name does not resolve');
    expect(inUse.output()).toBe(`hollowtrees-k8s-drain: cannot serve on 127.0.0.1:${port}: the port is already in use`);
  }, 60_000);

  it('a --host with a port in it, or a link-local IPv6 address without its interface, exits 2 saying what to pass instead', async () => {
    const kubeconfig = await kubeconfigFor((await startKubeApiServerCleaned()).kubeConfigFileText());
    const [v4, v6, linkLocal] = await Promise.all([
      run(['--kubeconfig', kubeconfig, '--host', '0.0.0.0:9000']),
      run(['--kubeconfig', kubeconfig, '--host', '[::1]:9000']),
      // On no interface here: its interface cannot be named for it.
      run(['--kubeconfig', kubeconfig, '--host', 'fe80::1234']),
    ]);
    expect([await v4.exited, await v6.exited, await linkLocal.exited]).toEqual(['code 2', 'code 2', 'code 2']);
    expect(v4.output()).toBe('hollowtrees-k8s-drain: --host 0.0.0.0:9000: a host has no port in it: pass --host 0.0.0.0 --port 9000');
    expect(v6.output()).toBe('hollowtrees-k8s-drain: --host [::1]:9000: a host has no port in it: pass --host ::1 --port 9000');
    expect(linkLocal.output()).toBe("hollowtrees-k8s-drain: --host fe80::1234: a link-local IPv6 address needs the interface it is on after a % (fe80::1234%<interface>), and no interface of this machine has it");
  }, 60_000);

  it('a --host name with several addresses, none of which can listen, names each address and why; a port in use at one exits 1, none of this machine\'s exits 2', async () => {
    const kubeconfig = await kubeconfigFor((await startKubeApiServerCleaned()).kubeConfigFileText());
    const busy = await busyPort();
    cleanups.push(() => busy.close());
    const { port } = busy;
    // The resolver's answer for the name, as a hosts file or DNS with several A records gives it; the listening is real.
    const preload = join(await workDir(), 'resolve-several.cjs');
    await writeFile(
      preload,
      `const dns = require('node:dns/promises'); const lookup = dns.lookup;
dns.lookup = (host, options) => host === 'several.test' ? Promise.resolve(process.env.SEVERAL.split(',').map((address) => ({ address, family: 4 }))) : lookup(host, options);
require('node:module').syncBuiltinESMExports();`,
    );
    const withAddresses = (addresses: string, args: string[]) => run(['--kubeconfig', kubeconfig, '--host', 'several.test', ...args], { NODE_OPTIONS: `--require ${preload}`, SEVERAL: addresses });
    const [inUse, notHere] = await Promise.all([withAddresses('192.0.2.1,127.0.0.1', ['--port', String(port)]), withAddresses('192.0.2.1,198.51.100.1', [])]);
    expect([await inUse.exited, await notHere.exited]).toEqual(['code 1', 'code 2']);
    expect(inUse.output()).toBe(`hollowtrees-k8s-drain: cannot serve on several.test:${port}: none of its addresses can be listened on: 192.0.2.1: no interface of this machine has that address; 127.0.0.1: the port is already in use`);
    expect(notHere.output()).toBe('hollowtrees-k8s-drain: --host several.test: none of its addresses can be listened on: 192.0.2.1: no interface of this machine has that address; 198.51.100.1: no interface of this machine has that address');
  }, 60_000);

  it('warns when told to serve every interface without mTLS', async () => {
    const kube = await startKubeApiServer();
    cleanups.push(() => kube.close());
    const proc = await run(['--kubeconfig', await kubeconfigFor(kube.kubeConfigFileText()), '--host', '0.0.0.0']);
    const warning = JSON.parse(await waitForOutput(proc, /anyone who can reach the port/)) as Record<string, unknown>;
    expect(warning).toMatchObject({ level: 'warn', service: 'hollowtrees-k8s-drain', host: '0.0.0.0', msg: expect.stringMatching(/^serving on 0\.0\.0\.0:\d+ without TLS: anyone who can reach the port can make this plugin act/) });
  });
});
