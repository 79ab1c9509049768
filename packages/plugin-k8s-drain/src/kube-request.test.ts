import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Code, SharedAgents } from '@hollowtrees/grpcplugin';
import { hasIpv6Loopback, makeTestCertificates } from '@hollowtrees/testkit';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { toPluginError } from './api-errors.js';
import { kubeWriter } from './kube-request.js';
import { cleanupsAfterEach, startTlsServer } from './test-support/kube.js';

const certs = makeTestCertificates();
const cleanups = cleanupsAfterEach();

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
  clientCertificate: string | undefined;
}

/** An HTTPS API server that wants the test CA's client certificate and records what it is sent. */
async function apiServer(answer: (res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const tls = { cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert, requestCert: true, rejectUnauthorized: true };
  const server = await startTlsServer(cleanups, tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString(), clientCertificate: String(peer.subject?.CN) });
      answer(res);
    });
  });
  return { url: `${server.url}/base`, seen };
}

function writerFor(url: string, timeoutMs?: number): ReturnType<typeof kubeWriter> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, caData: Buffer.from(certs.ca.cert).toString('base64') }],
    users: [{ name: 'u', token: 'the-token', certData: Buffer.from(certs.client.cert).toString('base64'), keyData: Buffer.from(certs.client.key).toString('base64') }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const agents = new SharedAgents({ maxSockets: 4 });
  cleanups.push(() => agents.destroy());
  return kubeWriter(kc, agents, timeoutMs);
}

const hasIpv6 = await hasIpv6Loopback();

/** A plain-HTTP API server on `host` that records what it is sent. */
async function plainApiServer(host: string, answer: (res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString(), clientCertificate: undefined });
      answer(res);
    });
  });
  server.listen(0, host);
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, seen };
}

/** A writer for a plain-HTTP server, with a basic-auth user (client-node 1.x needs insecure-skip-tls-verify for http://). */
function plainWriterFor(url: string): ReturnType<typeof kubeWriter> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', username: 'admin', password: 's3cret' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const agents = new SharedAgents({ maxSockets: 4 });
  cleanups.push(() => agents.destroy());
  return kubeWriter(kc, agents);
}

describe('kubeWriter', () => {
  it('writes over TLS with the kubeconfig’s CA, client certificate and token, on the server’s base path', async () => {
    const { url, seen } = await apiServer((res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"kind":"Status"}'));
    const write = writerFor(url);

    await write('PATCH', '/api/v1/nodes/node%2Da', { spec: { unschedulable: true } }, 'application/merge-patch+json');
    await write('POST', '/api/v1/namespaces/apps/pods/p/eviction', { kind: 'Eviction' });

    expect(seen.map((s) => [s.method, s.url, s.headers['content-type'], s.body])).toEqual([
      ['PATCH', '/base/api/v1/nodes/node%2Da', 'application/merge-patch+json', '{"spec":{"unschedulable":true}}'],
      ['POST', '/base/api/v1/namespaces/apps/pods/p/eviction', 'application/json', '{"kind":"Eviction"}'],
    ]);
    for (const s of seen) {
      expect(s.headers.authorization).toBe('Bearer the-token');
      expect(s.clientCertificate).toBe('hollowtrees test client');
    }
  });

  it('refuses with the HTTP code and the Status message, mapped as the generated client’s errors are', async () => {
    const status = { kind: 'Status', status: 'Failure', message: 'Cannot evict pod as it would violate the pod\'s disruption budget.', code: 429 };
    const { url } = await apiServer((res) => res.writeHead(429, { 'content-type': 'application/json' }).end(JSON.stringify(status)));

    const err = await writerFor(url)('POST', '/api/v1/namespaces/apps/pods/p/eviction', {}).catch((e: unknown) => e);

    const mapped = toPluginError(err, 'evicting pod apps/p');
    expect(mapped.code).toBe(Code.ResourceExhausted);
    expect(mapped.message).toBe('evicting pod apps/p: Cannot evict pod as it would violate the pod\'s disruption budget.');
  });

  it('gives up on a write the server never answers, as a network error the drain tries again', async () => {
    const { url, seen } = await apiServer(() => {});

    const err = await writerFor(url, 200)('PATCH', '/api/v1/nodes/n', { spec: { unschedulable: true } }).catch((e: unknown) => e);

    expect(seen).toHaveLength(1);
    const mapped = toPluginError(err, 'cordoning node n');
    expect([mapped.code, mapped.message]).toEqual([Code.Unavailable, 'cordoning node n: cannot reach the Kubernetes API: no answer within 200 ms']);
  });

  it('writes over plain HTTP with the kubeconfig’s basic-auth user, asking for JSON', async () => {
    const { url, seen } = await plainApiServer('127.0.0.1', (res) => res.writeHead(200).end());
    await plainWriterFor(url)('PATCH', '/api/v1/nodes/n', { spec: { unschedulable: true } }, 'application/strategic-merge-patch+json');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers).toMatchObject({
      authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}`,
      accept: 'application/json',
      'content-type': 'application/strategic-merge-patch+json',
      'content-length': String(Buffer.byteLength('{"spec":{"unschedulable":true}}')),
    });
  });

  it.skipIf(!hasIpv6)('reaches an API server at an IPv6 address written in brackets', async () => {
    const { url, seen } = await plainApiServer('::1', (res) => res.writeHead(201).end());
    expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    await plainWriterFor(url)('POST', '/api/v1/namespaces/apps/events', { kind: 'Event' });
    expect(seen.map((s) => s.url)).toEqual(['/api/v1/namespaces/apps/events']);
  });

  it('refuses any answer outside 2xx, a 300 too, with its code, body and headers (repeated ones joined)', async () => {
    const { url } = await plainApiServer('127.0.0.1', (res) =>
      res.writeHead(300, [['content-type', 'application/json'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']]).end('{"kind":"Status","code":300}'),
    );
    const err = await plainWriterFor(url)('POST', '/api/v1/namespaces/apps/pods/p/eviction', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    const refused = err as ApiException<string>;
    expect([refused.code, refused.body]).toEqual([300, '{"kind":"Status","code":300}']);
    expect(refused.headers).toMatchObject({ 'content-type': 'application/json', 'set-cookie': 'a=1, b=2' });
    expect(refused.message).toContain('HTTP 300');
  });
});
