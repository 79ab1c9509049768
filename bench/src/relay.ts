/**
 * The transport ceiling for Hollowtrees' design on this machine: a bare relay
 * that reads `POST /api/v2/alerts`, parses the JSON and sends each alert to the
 * plugin with the SDK's `PluginClient` (over the stream, or unary calls), then answers. No
 * validation, grouping, cooldown, metrics or logging. Hollowtrees' ingest next
 * to this number shows how much of its cost is its own code and how much is
 * HTTP + gRPC per alert.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { PluginClient, type PluginTransport } from '@hollowtrees/grpcplugin';
import { stopChild } from '@hollowtrees/testkit';
import { readRss, type Target } from './targets.js';

/** Forks the relay towards the plugin at `pluginAddress` over `transport` (with extra `node` flags) and resolves once it listens. */
export function startRelay(pluginAddress: string, transport: PluginTransport, nodeArgs: string[] = []): Promise<Target> {
  const child = fork(new URL(import.meta.url).pathname, [pluginAddress, transport], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeArgs });
  return new Promise((resolve, reject) => {
    child.once('message', (port) =>
      resolve({
        name: 'relay',
        url: `http://127.0.0.1:${port as number}`,
        pid: child.pid!,
        rss: () => readRss(child.pid!),
        stop: () => stopChild(child),
      }),
    );
    child.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
}

interface PostedAlert {
  labels: Record<string, string>;
}

if (process.send && process.argv[1] === new URL(import.meta.url).pathname) {
  // Exits cleanly on SIGTERM so `--cpu-prof` can write its profile.
  process.on('SIGTERM', () => process.exit(0));
  const client = new PluginClient(process.argv[2]!, { transport: process.argv[3] as PluginTransport });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const alerts = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PostedAlert[];
      for (const alert of alerts) {
        const event = { id: alert.labels.instance_id!, source: 'relay', specversion: '1.0', type: `prometheus.server.alert.${alert.labels.alertname}`, data: { labels: alert.labels } };
        client.handle(event, { flow: 'relay' }).catch(() => {});
      }
      // Answered in the check phase, after the calls' frames are written, as Hollowtrees does.
      setImmediate(() => {
        const reply = `{"status":"success","accepted":${alerts.length}}`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length });
        res.end(reply);
      });
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
}
