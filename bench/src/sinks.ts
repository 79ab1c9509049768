/**
 * What the targets act on, hosted in the bench process so one clock times both
 * ends: a real gRPC plugin (the SDK's `serve`) for Hollowtrees and a webhook
 * receiver (plain HTTP) for Alertmanager. Each reports the instance of every
 * alert it gets, at the moment its handler is entered.
 */
import { createServer, type Server } from 'node:http';
import { labelsOf, serve, type PluginServer } from '@hollowtrees/grpcplugin';

/** Told of each alert a sink gets: its instance id, and `performance.now()` on entry. */
export type EntryListener = (instanceId: string, at: number) => void;

export interface Sink {
  /** `host:port` (plugin) or URL (webhook). */
  address: string;
  /** Calls (plugin) or alerts (webhook) received so far. */
  readonly received: number;
  /** Replaces the entry listener. */
  onEntry(listener: EntryListener | undefined): void;
  close(): Promise<void>;
}

/** A gRPC action plugin whose handler takes `delayMs` (0: answers at once). */
export async function startPluginSink(options: { delayMs?: number } = {}): Promise<Sink> {
  let listener: EntryListener | undefined;
  let received = 0;
  const delayMs = options.delayMs ?? 0;
  const server: PluginServer = await serve(
    0,
    {
      handle: async (event) => {
        const at = performance.now();
        received++;
        listener?.(labelsOf(event).instance_id ?? '', at);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        return { message: 'ok' };
      },
    },
    { host: '127.0.0.1', shutdownTimeoutMs: 1_000 },
  );
  return {
    address: `127.0.0.1:${server.port}`,
    get received() {
      return received;
    },
    onEntry: (l) => (listener = l),
    close: () => server.close(),
  };
}

interface WebhookPayload {
  alerts?: Array<{ labels?: Record<string, string> }>;
}

/** An Alertmanager webhook receiver that answers 200; entry time is when the request arrives. */
export async function startWebhookSink(): Promise<Sink> {
  let listener: EntryListener | undefined;
  let received = 0;
  const server: Server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      let payload: WebhookPayload = {};
      try {
        payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload;
      } catch {
        return;
      }
      for (const alert of payload.alerts ?? []) {
        received++;
        listener?.(alert.labels?.instance_id ?? '', at);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `http://127.0.0.1:${port}/webhook`,
    get received() {
      return received;
    },
    onEntry: (l) => (listener = l),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
