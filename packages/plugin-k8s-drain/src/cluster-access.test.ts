/** The start-up check against the Kubernetes API stand-in over real HTTP, through the real client. */
import { createServer, type Server } from 'node:http';
import { rootCertificates } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { makeTestCertificates, rejectionOf, startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { checkClusterAccess } from './cluster-access.js';
import { cleanupsAfterEach, startTlsServer } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

async function cluster(token?: string): Promise<KubeApiServer> {
  const api = await startKubeApiServer(token ? { token } : {});
  cleanups.push(() => api.close());
  return api;
}

function configFor(api: KubeApiServer, token?: string): KubeConfig {
  const options = api.kubeConfigOptions();
  const kc = new KubeConfig();
  kc.loadFromOptions(token === undefined ? options : { ...options, users: [{ name: 'testkit', token }] });
  return kc;
}

describe('checkClusterAccess', () => {
  it('passes when the credentials can list nodes, with one call for one node', async () => {
    const api = await cluster('secret');
    await checkClusterAccess(configFor(api));
    expect(api.requests.map((r) => [r.method, r.path, r.query.limit])).toEqual([['GET', '/api/v1/nodes', '1']]);
  });

  it('names the API server, the user and the hint for refused credentials', async () => {
    const api = await cluster('secret');
    const url = api.kubeConfigOptions().clusters[0]!.server;
    await expect(checkClusterAccess(configFor(api, 'wrong'))).rejects.toThrow(
      new RegExp(`^cannot list nodes with the Kubernetes API at ${url.replace(/[.]/g, '\\.')} \\(user "testkit"\\): .*\\(the API server refused the credentials\\)$`),
    );
  });

  it('says which ClusterRole is missing when the user may not list nodes', async () => {
    const api = await cluster();
    api.failNext(1, { code: 403, path: /^\/api\/v1\/nodes$/ });
    await expect(checkClusterAccess(configFor(api))).rejects.toThrow(/\(the user lacks the ClusterRole hollowtrees-k8s-drain of deploy\/kubernetes\)$/);
  });

  it('gives no hint for other failures', async () => {
    const api = await cluster();
    api.failNext(1, { code: 500 });
    const err = await rejectionOf(checkClusterAccess(configFor(api)), Error);
    expect(err.message).toMatch(/^cannot list nodes with the Kubernetes API at http:\/\/.* \(user "testkit"\): /);
    expect(err.message).not.toMatch(/\(the (API server refused|user lacks)/);
    expect(err.cause).toBeDefined();
  });

  it('says the API server\'s certificate cannot be trusted, and what to check, when the kubeconfig names another CA', async () => {
    const server = await startTlsServer(cleanups, makeTestCertificates().server);
    const err = await rejectionOf(checkClusterAccess(server.kubeConfig({ ca: rootCertificates[0]! })), Error);
    expect(err.message).toBe(
      `cannot list nodes with the Kubernetes API at ${server.url} (user "u"): listing nodes: cannot trust the Kubernetes API server's certificate ` +
        `(UNABLE_TO_VERIFY_LEAF_SIGNATURE: request to ${server.url}/api/v1/nodes?limit=1 failed, reason: unable to verify the first certificate): ` +
        "check the kubeconfig's server and certificate-authority",
    );
  });

  it('stops waiting for an API server that never answers, and says how long it waited', async () => {
    const silent: Server = createServer(() => {}); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => (silent.closeAllConnections(), silent.close(resolve))));
    const port = (silent.address() as { port: number }).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const err = await rejectionOf(checkClusterAccess(kc, 200), Error);
    // As it is: not wrapped in a "cannot list nodes" that would repeat the server.
    expect(err.message).toBe(`the Kubernetes API at http://127.0.0.1:${port} did not answer within 0.2 s`);
  });

  it('says "none" for a context without a user', async () => {
    const api = await cluster();
    api.failNext(1, { code: 500 });
    const kc = new KubeConfig();
    const server = api.kubeConfigOptions().clusters[0]!.server;
    kc.loadFromOptions({ clusters: [{ name: 'c', server, skipTLSVerify: true }], users: [], contexts: [{ name: 'x', cluster: 'c', user: 'ghost' }], currentContext: 'x' });
    const err = await rejectionOf(checkClusterAccess(kc), Error);
    expect(err.message).toMatch(new RegExp(`^cannot list nodes with the Kubernetes API at ${server.replace(/[.]/g, '\\.')} \\(user "none"\\): listing nodes: `));
  });

  it('refuses a kubeconfig whose context names no cluster', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [], users: [], contexts: [{ name: 'orphan', cluster: 'gone', user: 'nobody' }], currentContext: 'orphan' });
    await expect(checkClusterAccess(kc)).rejects.toThrow('the kubeconfig has no cluster for context "orphan"');
  });
});
