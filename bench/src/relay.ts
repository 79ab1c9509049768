/**
 * The transport ceiling for Hollowtrees' design on this machine: a bare relay
 * that reads `POST /api/v2/alerts`, parses the JSON and sends each alert to the
 * plugin with the SDK's `PluginClient` (over the stream, or unary calls), then answers. No
 * validation, grouping, cooldown, metrics or logging. Hollowtrees' ingest next
 * to this number shows how much of its cost is its own code and how much is
 * HTTP + gRPC per alert. With `processes` > 1 the relay runs that many processes
 * sharing its port (`node:cluster`), each with its own channel to the plugin: what
 * ingest on more than one core would gain on this machine.
 */
import cluster from 'node:cluster';
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { PluginClient, type PluginTransport } from '@hollowtrees/grpcplugin';
import { stopChild } from '@hollowtrees/testkit';
import { readRss, type Target } from './targets.js';

/** Forks the relay (`processes` of them on one port) towards the plugin at `pluginAddress` over `transport` (with extra `node` flags) and resolves once it listens. */
export function startRelay(pluginAddress: string, transport: PluginTransport, nodeArgs: string[] = [], processes = 1): Promise<Target> {
  const child = fork(new URL(import.meta.url).pathname, [pluginAddress, transport, String(processes)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeArgs });
  return new Promise((resolve, reject) => {
    child.once('message', (port) =>
      resolve({
        name: processes > 1 ? `relay ×${processes}` : 'relay',
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

/** The relay's HTTP server in this process; tells its parent (the bench, or the cluster's primary) its port. */
function serveRelay(pluginAddress: string, transport: PluginTransport): void {
  const client = new PluginClient(pluginAddress, { transport });
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
  // Port 0 in cluster workers: the primary hands every worker the same port.
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
}

/** The cluster's primary: forks `processes` relays, tells the bench their shared port once all listen, stops them on SIGTERM. */
function superviseRelays(processes: number): void {
  const workers = Array.from({ length: processes }, () => cluster.fork());
  let listening = 0;
  for (const worker of workers) worker.once('message', (port) => ++listening === processes && process.send!(port));
  process.on('SIGTERM', () => {
    let left = workers.length;
    for (const worker of workers) worker.once('exit', () => --left === 0 && process.exit(0)).process.kill('SIGTERM');
  });
}

if (process.send && process.argv[1] === new URL(import.meta.url).pathname) {
  const [pluginAddress, transport, processes] = [process.argv[2]!, process.argv[3] as PluginTransport, Number(process.argv[4] ?? 1)];
  if (cluster.isPrimary && processes > 1) superviseRelays(processes);
  else {
    // Exits cleanly on SIGTERM so `--cpu-prof` can write its profile.
    process.on('SIGTERM', () => process.exit(0));
    serveRelay(pluginAddress, transport);
  }
}
