import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** What the health server reports: `/healthz`'s body, and why the watcher is not ready yet. */
export interface HealthStatus {
  /** The body of `/healthz` and `/readyz` (besides `status`). */
  status(): Record<string, unknown>;
  /** Why `/readyz` answers 503; undefined once the watcher is ready. */
  notReady(): string | undefined;
}

/** A running `/healthz`, `/readyz` and `/metrics` server. */
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
 * The path of a request target, undefined for one the URL parser refuses (`//[`, `http://a:99999/`):
 * Node's HTTP parser lets them through, and a throw in the handler would end the watcher.
 */
function pathOf(target: string): string | undefined {
  try {
    return new URL(target, 'http://watcher').pathname;
  } catch {
    return undefined;
  }
}

/**
 * Serves `GET /healthz` (liveness: 200 with the status as JSON while the watcher runs), `GET /readyz`
 * (readiness: 503 with the reason until the watcher watches, then 200) and `GET /metrics` (the
 * registry in the Prometheus text format); a target that is no URL is 400, anything else 404.
 */
export async function startHealthServer(listen: string, registry: Registry, health: HealthStatus): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const json = (res: ServerResponse, code: number, body: Record<string, unknown>): void => {
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const server: Server = createServer((req, res) => {
    const path = pathOf(req.url ?? '/');
    if (path === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request target\n');
    } else if (req.method === 'GET' && path === '/healthz') {
      json(res, 200, { status: 'ok', ...health.status() });
    } else if (req.method === 'GET' && path === '/readyz') {
      const reason = health.notReady();
      json(res, reason === undefined ? 200 : 503, { status: reason === undefined ? 'ready' : 'not ready', ...(reason !== undefined && { reason }), ...health.status() });
    } else if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz, /readyz and /metrics are served\n');
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
