import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, parseConfig, startHollowtrees, type Hollowtrees } from '@hollowtrees/core';
import { createJsonLogger, serve, type Backoff, type CloudEvent, type PluginServer } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';
import { pollUntil } from '@hollowtrees/testkit';
import { Registry } from 'prom-client';
import type { WatcherSettings } from '../cli-args.js';
import { DEFAULT_AZURE_EVENT_TYPES } from '../azure-scheduled-events.js';
import { DEFAULT_MAX_RESENDS } from '../notice-follow.js';
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

/** A real gRPC action plugin that records the events it gets, answering each through `behaviour`. */
export interface RecordingPlugin {
  readonly address: string;
  readonly events: CloudEvent[];
  close(): Promise<void>;
}

export async function startRecordingPlugin(behaviour: (event: CloudEvent) => Promise<void> | void = () => {}): Promise<RecordingPlugin> {
  const events: CloudEvent[] = [];
  const handler = {
    handle: async (event: CloudEvent) => {
      events.push(event);
      await behaviour(event);
    },
  };
  const server: PluginServer = await serve(0, handler, { host: '127.0.0.1', shutdownTimeoutMs: 1_000 });
  return { address: `127.0.0.1:${server.port}`, events, close: () => server.close() };
}

/** Options of {@link startCore}. */
export interface TestCoreOptions {
  /** Default 0: any free port. */
  port?: number;
  /** YAML lines under `server:` (indented two spaces), e.g. auth or limits. */
  server?: string;
  /** YAML lines added to the flow (indented four spaces), e.g. concurrency. */
  flow?: string;
}

/**
 * Core with one flow that hands every watcher event to `pluginAddress`; without `groupBy` a group
 * is one event id, so a re-send is a duplicate.
 */
export function startCore(pluginAddress: string, options: TestCoreOptions = {}): Promise<Hollowtrees> {
  const yaml = `
${options.server ? `server:\n${options.server}` : ''}
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
${options.flow ?? ''}
`;
  return startCoreWithConfig(yaml, 'watcher-test.yaml', {}, options.port);
}

/** Core on a config text (`file` names it in errors), `${ENV}` taken from `env`, quiet, on 127.0.0.1. */
export function startCoreWithConfig(yaml: string, file: string, env: Record<string, string>, port = 0): Promise<Hollowtrees> {
  return startHollowtrees(parseConfig(yaml, file, env), { listen: `127.0.0.1:${port}`, logger: createLogger('silent') });
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
    azureApprove: false,
    maxResends: DEFAULT_MAX_RESENDS,
    listen: '127.0.0.1:0',
    stopGraceMs: 5_000,
    once: false,
    dryRun: false,
    logLevel: 'debug',
    nodeName: 'node-a',
    stateFile: undefined,
    ...overrides,
  };
}

/** What a test may give {@link startTestWatcher} besides the settings. */
export interface TestWatcherOptions {
  /** Default: fast, 20 ms doubling to 200 ms. */
  backoff?: Backoff;
  /** The boot the watcher runs in (see {@link RunOptions.bootId}); default: this machine's. */
  bootId?: string;
}

/** Starts a watcher in-process as the bin does, with fast backoff unless told otherwise. */
export async function startTestWatcher(settings: WatcherSettings, options: TestWatcherOptions = {}): Promise<RunningWatcher & { lines: Array<Record<string, unknown>> }> {
  const { logger, lines } = capturedLogger();
  const { backoff = (attempt) => Math.min(200, 20 * 2 ** (attempt - 1)), bootId } = options;
  const running = await runWatcher(settings, { logger, registry: new Registry(), backoff, ...(bootId !== undefined && { bootId }) });
  return Object.assign(running, { lines });
}

/** One sample of a watcher metric, 0 when absent. */
export async function metric(running: RunningWatcher, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = (await running.metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return found?.value ?? 0;
}

/** Waits (polling every 10 ms) until `check` holds; fails after `timeoutMs` naming `what`. */
export function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  return pollUntil(check, timeoutMs, () => what, 10);
}

/** Lets the watcher poll `more` more times, so a send that should not happen would have. */
export async function morePolls(running: RunningWatcher, cloud: string, more = 5): Promise<void> {
  const polls = await metric(running, 'hollowtrees_node_watcher_polls_total', { cloud });
  await until(`${more} more polls`, async () => (await metric(running, 'hollowtrees_node_watcher_polls_total', { cloud })) >= polls + more);
}

/** A reverse proxy that serves core under a path prefix, as an ingress does; it records every path asked for. */
export interface PrefixProxy {
  /** `http://127.0.0.1:<port>`, without the prefix. */
  readonly url: string;
  /** Every path asked for, with its query, as the client sent it. */
  readonly paths: string[];
  /** Bytes of the answers' bodies passed back so far. */
  readonly bytes: number;
  /**
   * While on, events posted (`<prefix>/api/v1/events`) are answered 503, as an ingress answers while core has no ready
   * pod (a restart, a full queue), and counted in {@link refused}; the status API still passes.
   */
  refuseEvents(on: boolean): void;
  /** While on, the status API (`<prefix>/api/v1/status...`) is answered 503: what core's runs did meanwhile goes unseen. */
  refuseStatus(on: boolean): void;
  /** Events refused so far by {@link refuseEvents}. */
  readonly refused: number;
  /** While on, status reads reach core without `eventId`: core answers as one older than the watcher, which lists every event's. */
  dropEventIds(on: boolean): void;
  close(): Promise<void>;
}

/** `path` (with its query) without its `eventId` parameters. */
function withoutEventIds(path: string): string {
  const url = new URL(path, 'http://proxy');
  url.searchParams.delete('eventId');
  return `${url.pathname}${url.search}`;
}

/**
 * Forwards `<prefix>/x` to `target` + `/x` (what an ingress rewrite does) and answers 404 for anything outside the prefix.
 * `readsTarget`: where everything but events goes instead, as a Service in front of several core replicas may send a
 * client's reads to another replica than its events.
 */
export async function startPrefixProxy(prefix: string, target: string, readsTarget = target): Promise<PrefixProxy> {
  const paths: string[] = [];
  let bytes = 0;
  let refusing = false;
  let refusingStatus = false;
  let refused = 0;
  let droppingEventIds = false;
  const server: Server = createServer((req, res) => {
    const asked = req.url ?? '/';
    paths.push(asked);
    const path = droppingEventIds ? withoutEventIds(asked) : asked;
    if (!path.startsWith(`${prefix}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route for ${path}\n`);
      return;
    }
    const refuseEvent = refusing && path === `${prefix}/api/v1/events`;
    if (refuseEvent || (refusingStatus && path.startsWith(`${prefix}/api/v1/status`))) {
      if (refuseEvent) refused++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no ready backend\n');
      return;
    }
    const upstream = request(new URL(path.slice(prefix.length), path === `${prefix}/api/v1/events` ? target : readsTarget), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.on('data', (chunk: Buffer) => (bytes += chunk.length));
      answer.pipe(res);
    });
    upstream.once('error', (err) => res.writeHead(502).end(err.message));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    get bytes() {
      return bytes;
    },
    refuseEvents: (on) => void (refusing = on),
    refuseStatus: (on) => void (refusingStatus = on),
    get refused() {
      return refused;
    },
    dropEventIds: (on) => void (droppingEventIds = on),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A flow (YAML lines under `flows:`) that {@link holdOtherGroups} fills: one group per event, held an hour. */
export const OTHER_FLOW = '  other:\n    allowedEvents: [other.event]\n    cooldown: 1h\n    plugins: [log]\n';

/**
 * Makes core (configured with {@link OTHER_FLOW}) hold `count` groups of other events, ids `other-0`,
 * `other-1`, ..., and waits for their runs to end: a run ending later would push the runs a test
 * looks for out of core's last 100.
 */
export async function holdOtherGroups(core: Hollowtrees, count: number): Promise<void> {
  const batch = Array.from({ length: count }, (_, i) => ({ specversion: '1.0', id: `other-${i}`, source: 'test', type: 'other.event', data: { labels: {} } }));
  const res = await fetch(`${core.url}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify(batch) });
  if (res.status !== 200) throw new Error(`core took no batch of ${count} events: HTTP ${res.status} ${await res.text()}`);
  await until(`the ${count} other runs ended`, () => core.engine.groups().every((g) => g.flow !== 'other' || g.phase === 'cooling'), 20_000);
}
