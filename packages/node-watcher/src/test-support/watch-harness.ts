import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { createJsonLogger, serve, type CloudEvent, type PluginServer } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { WatcherSettings } from '../cli-args.js';
import { DEFAULT_AZURE_EVENT_TYPES } from '../azure-scheduled-events.js';
import { runWatcher, type RunningWatcher } from '../run-watcher.js';

/** Things a test started, closed after it in reverse order. */
export class Cleanups {
  private readonly steps: Array<() => unknown> = [];
  add<T>(thing: T, close: (thing: T) => unknown): T {
    this.steps.push(() => close(thing));
    return thing;
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }
}

/** Polls `check` every 10 ms until it holds; fails after `timeoutMs` with `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A real gRPC action plugin that records the events it gets. */
export interface RecordingPlugin {
  readonly address: string;
  readonly events: CloudEvent[];
  close(): Promise<void>;
}

export async function startRecordingPlugin(): Promise<RecordingPlugin> {
  const events: CloudEvent[] = [];
  const server: PluginServer = await serve(0, { handle: (event) => void events.push(event) }, { host: '127.0.0.1', shutdownTimeoutMs: 1_000 });
  return { address: `127.0.0.1:${server.port}`, events, close: () => server.close() };
}

/** A port free now, for a core started later on it (the "core down, then back" test). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Core with one flow that hands every watcher event to `pluginAddress`; without `groupBy` a group is one event id, so a re-send is a duplicate. */
export function startCore(pluginAddress: string, port = 0): Promise<Hollowtrees> {
  const yaml = `
plugins:
  rec:
    type: grpc
    address: ${pluginAddress}
    timeout: 5s
flows:
  node-notices:
    allowedEvents: [hollowtrees.node.*.*]
    cooldown: 10m
    plugins: [rec]
`;
  return startHollowtrees(parseConfig(yaml, 'watcher-test.yaml', {}), { listen: `127.0.0.1:${port}`, logger: createLogger('silent') });
}

/** A watcher's log lines, captured. */
export function capturedLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createJsonLogger({ service: 'hollowtrees-node-watcher', level: 'debug', destination }), lines };
}

/** Settings as the bin would parse them, with short intervals for tests. */
export function testSettings(overrides: Partial<WatcherSettings>): WatcherSettings {
  return {
    coreUrl: undefined,
    auth: undefined,
    ca: undefined,
    cloud: undefined,
    metadataUrl: undefined,
    pollIntervalMs: 20,
    azureEventTypes: DEFAULT_AZURE_EVENT_TYPES,
    listen: '127.0.0.1:0',
    once: false,
    dryRun: false,
    logLevel: 'debug',
    nodeName: 'node-a',
    ...overrides,
  };
}

/** Starts a watcher in-process as the bin does, with fast backoff. */
export async function startTestWatcher(settings: WatcherSettings): Promise<RunningWatcher & { lines: Array<Record<string, unknown>> }> {
  const { logger, lines } = capturedLogger();
  const running = await runWatcher(settings, { logger, registry: new Registry(), backoff: (attempt) => Math.min(200, 20 * 2 ** (attempt - 1)) });
  return Object.assign(running, { lines });
}

/** One sample of a watcher metric, 0 when absent. */
export async function metric(running: RunningWatcher, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = (await running.metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return found?.value ?? 0;
}
