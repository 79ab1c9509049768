import http from 'node:http';
import https from 'node:https';
import { ApiException, type KubeConfig } from '@kubernetes/client-node';
import type { SharedAgents } from '@hollowtrees/grpcplugin';

/** Sends a JSON body to an API server path; resolves on a 2xx answer, whose body is not read. */
export type KubeWrite = (method: 'POST' | 'PATCH' | 'PUT', path: string, body: object, contentType?: string) => Promise<void>;

function headersOf(res: http.IncomingMessage): Record<string, string> {
  return Object.fromEntries(Object.entries(res.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]));
}

/**
 * How long a write may go without an answer: a connection the API server (or a
 * load balancer in front of it) stopped answering on would otherwise hold one of
 * the call gate's slots for ever, and enough of them would stall every drain.
 */
export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;

/** The error of a call given up after `timeoutMs` without its answer: ETIMEDOUT, mapped as a network error (UNAVAILABLE), so the drain tries again. */
export const noAnswerWithin = (timeoutMs: number): Error => Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });

/**
 * Writes without the generated client, for the calls a wave makes thousands of
 * (a cordon per node, an eviction per pod). `@kubernetes/client-node` costs
 * about twice the CPU of the request itself per call: its ObjectSerializer
 * copies the body and the answer through the model classes, and node-fetch
 * builds headers, URL and body objects on top of `http.request`. This keeps
 * what matters from it: the kubeconfig's authentication, applied per call by
 * its own `applyToHTTPSOptions` (as its Watch does, so rotated tokens and
 * certificates are read as before), the shared keep-alive agents, and its
 * `ApiException` (HTTP code and body) for a refusal, so errors map as before.
 */
export function kubeWriter(kubeConfig: KubeConfig, agents: SharedAgents, timeoutMs = DEFAULT_WRITE_TIMEOUT_MS): KubeWrite {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const server = new URL(cluster.server);
  const transport = server.protocol === 'https:' ? https : http;
  const target = {
    protocol: server.protocol,
    // `[::1]` in a URL, `::1` for a socket.
    hostname: server.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: server.port,
    basePath: server.pathname.replace(/\/$/, ''),
  };
  return async (method, path, body, contentType = 'application/json') => {
    const auth: https.RequestOptions = { headers: {} };
    await kubeConfig.applyToHTTPSOptions(auth);
    const payload = JSON.stringify(body);
    await new Promise<void>((resolve, reject) => {
      const req = transport.request(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          path: target.basePath + path,
          method,
          agent: agents.agentFor(auth.agent as http.Agent | undefined),
          ...(auth.auth ? { auth: auth.auth } : {}),
          headers: { ...auth.headers, accept: 'application/json', 'content-type': contentType, 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            res.resume();
            res.once('end', resolve);
          } else {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.once('end', () => reject(new ApiException(status, `HTTP ${status}`, Buffer.concat(chunks).toString('utf8'), headersOf(res))));
          }
          res.once('error', reject);
        },
      );
      req.once('error', reject);
      req.setTimeout(timeoutMs, () => req.destroy(noAnswerWithin(timeoutMs)));
      req.end(payload);
    });
  };
}
