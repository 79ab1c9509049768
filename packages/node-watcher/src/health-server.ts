import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A running `/healthz` and `/metrics` server. */
export interface HealthServer {
  /** The port bound (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** Splits `host:port` (`[::1]:9102` for IPv6). */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) throw new Error(`expected host:port, got "${listen}"`);
  return { host: match[1] ?? match[2] ?? '', port };
}

/**
 * Serves `GET /healthz` (200 with `status()` as JSON while the watcher runs) and `GET /metrics`
 * (the registry in the Prometheus text format); anything else is 404.
 */
export async function startHealthServer(listen: string, registry: Registry, status: () => Record<string, unknown>): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://watcher').pathname;
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', ...status() }));
    } else if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz and /metrics are served\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
