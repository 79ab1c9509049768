/**
 * What this package's tests share: a stand-in API server with the real client on it, an HTTPS
 * server to try TLS settings on, a retry budget, a gate for held requests, and the cleanups after each test.
 */
import { once } from 'node:events';
import type { RequestListener } from 'node:http';
import { createServer, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '@hollowtrees/grpcplugin';
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach } from 'vitest';
import { Deadline } from '../deadline.js';
import { createKubeApi, type KubeApi, type KubeApiOptions } from '../kube-api.js';

/** Things to undo after the current test, run in reverse order by an `afterEach` this registers. */
export function cleanupsAfterEach(): Array<() => unknown> {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** The stand-in API server, and a {@link KubeApi} on it through the real client, made with `apiOptions`. */
export async function startStandIn(
  cleanups: Array<() => unknown>,
  options: KubeApiServerOptions = {},
  apiOptions: KubeApiOptions = {},
): Promise<{ kube: KubeApiServer; api: KubeApi }> {
  const kube = await startKubeApiServer(options);
  cleanups.push(() => kube.close());
  const kc = new KubeConfig();
  kc.loadFromOptions(kube.kubeConfigOptions());
  const api = createKubeApi(kc, apiOptions);
  cleanups.push(() => api.close());
  return { kube, api };
}

/** What {@link startTlsServer} started. */
export interface TlsServer {
  url: string;
  /** The TCP connections it took: one per try, as a connection that failed its TLS handshake is not reused. */
  connections(): number;
  /** A kubeconfig for it with a token, trusting the CA `ca` (PEM), with `tlsServerName` as the name to check the certificate against when given. */
  kubeConfig(tls: { ca: string; tlsServerName?: string }): KubeConfig;
}

/**
 * An HTTPS server on loopback with `options` (its certificate; whether it asks for the client's),
 * answering each request with `handle`: by default 200 and an empty object.
 */
export async function startTlsServer(
  cleanups: Array<() => unknown>,
  options: ServerOptions,
  handle: RequestListener = (_, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
): Promise<TlsServer> {
  const server = createServer(options, handle);
  let connections = 0;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    connections: () => connections,
    kubeConfig: ({ ca, tlsServerName }) => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: url, caData: Buffer.from(ca).toString('base64'), ...(tlsServerName ? { tlsServerName } : {}) }],
        users: [{ name: 'u', token: 'the-token' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      return kc;
    },
  };
}

/** A retry budget ending `ms` from now on `clock`, with a short backoff. */
export function retryWithin(cleanups: Array<() => unknown>, ms: number, backoffMs = 5, clock: Clock = systemClock): { deadline: Deadline; backoff: () => number } {
  const deadline = new Deadline(clock.now() + ms, new AbortController().signal, clock);
  cleanups.push(() => deadline.dispose());
  return { deadline, backoff: () => backoffMs };
}

/** A promise the test settles, for a request held at the stand-in (`failNext` with `effect: 'delay'`); opened at cleanup at the latest. */
export function held(cleanups: Array<() => unknown>): { until: Promise<void>; open: () => void } {
  let open!: () => void;
  const until = new Promise<void>((resolve) => (open = resolve));
  cleanups.push(() => open());
  return { until, open };
}
