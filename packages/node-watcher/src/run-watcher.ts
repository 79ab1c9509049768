import { exponentialBackoff, pluginLogger, systemClock, type Backoff, type Clock } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { WatcherSettings } from './cli-args.js';
import { AzureApprover } from './azure-approval.js';
import { AzureScheduledEventsMonitor } from './azure-scheduled-events.js';
import { CoreClient } from './core-client.js';
import { createMonitor } from './create-monitor.js';
import { detectCloud } from './detect-cloud.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import { NodeWatcher } from './node-watcher.js';
import { MAX_RETRY_WAIT_MS } from './poll-loop.js';
import { WatcherMetrics } from './watcher-metrics.js';

/**
 * The waits after failures unless told otherwise: 500 ms doubling to 5 s, jittered. Sends to core
 * too, not only metadata reads: a notice may give 30 s (an Azure Preempt, a Google Cloud
 * preemption), and a wait grown to 30 s while core restarted would spend all of it once core is
 * back. Only the notices waiting retry, so a core that comes back is not flooded; its own
 * Retry-After, when longer, still holds.
 */
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: MAX_RETRY_WAIT_MS };

/** How long a stopping watcher lets queued events reach core. */
const STOP_GRACE_MS = 5_000;
/** How long `--once` waits for core to accept what it found. */
const ONCE_DELIVERY_MS = 30_000;

/** What the bin (and a test) gives {@link runWatcher} besides the settings. */
export interface RunOptions {
  logger: Logger;
  /** Default: a new registry. */
  registry?: Registry;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: 500 ms doubling to 5 s, jittered. */
  backoff?: Backoff;
}

/** A watcher running as the bin runs it. */
export interface RunningWatcher {
  readonly watcher: NodeWatcher;
  readonly metrics: WatcherMetrics;
  /** Where /healthz, /readyz and /metrics are served. */
  readonly health: HealthServer;
  /** Stops polling, lets queued events reach core for a few seconds, closes the servers. */
  stop(): Promise<void>;
}

/** Why a watcher could not start, for the bin to print before exiting 1. */
export class StartError extends Error {
  override readonly name = 'StartError';
}

async function setUp(settings: WatcherSettings, options: RunOptions): Promise<{ watcher: NodeWatcher; metrics: WatcherMetrics; close: () => Promise<void> }> {
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff ?? exponentialBackoff(DEFAULT_BACKOFF);
  const logger = pluginLogger(options.logger);
  const metrics = new WatcherMetrics(options.registry ?? new Registry());
  const cloud = settings.cloud ?? (await detectCloud({ ...(settings.metadataUrl !== undefined && { baseUrl: settings.metadataUrl }), signal: AbortSignal.timeout(10_000) }));
  if (!cloud) throw new StartError('no metadata service answered as AWS, Google Cloud or Azure would; pass --cloud (and --metadata-url when it is elsewhere)');
  const monitor = createMonitor({
    cloud,
    ...(settings.metadataUrl !== undefined && { metadataUrl: settings.metadataUrl }),
    ...(settings.pollIntervalMs !== undefined && { pollIntervalMs: settings.pollIntervalMs }),
    azureEventTypes: settings.azureEventTypes,
    backoff,
    clock,
  });
  const client = settings.dryRun || settings.coreUrl === undefined ? undefined : new CoreClient({ coreUrl: settings.coreUrl, ...(settings.auth && { auth: settings.auth }), ...(settings.ca && { ca: settings.ca }) });
  if (settings.azureApprove && !(monitor instanceof AzureScheduledEventsMonitor)) logger.warn('--azure-approve ignored: this is not Azure', { cloud });
  const approver =
    settings.azureApprove && client && monitor instanceof AzureScheduledEventsMonitor
      ? new AzureApprover({ runsOf: (id, s) => client.runsOf(id, s), groupsOf: (id, s) => client.groupsOf(id, s), approve: (id, s) => monitor.approve(id, s), intervalMs: settings.pollIntervalMs ?? 1_000, clock, logger })
      : undefined;
  const watcher = new NodeWatcher({
    monitor,
    nodeName: settings.nodeName,
    send: client && ((event, signal) => client.post(event, signal)),
    clock,
    backoff,
    logger,
    metrics,
    ...(approver && { onAccepted: (event) => approver.track(event.id) }),
  });
  return {
    watcher,
    metrics,
    close: async () => {
      await approver?.close();
      client?.close();
    },
  };
}

/** Starts the watcher: identity, polling, delivery, and /healthz, /readyz and /metrics on `settings.listen`. */
export async function runWatcher(settings: WatcherSettings, options: RunOptions): Promise<RunningWatcher> {
  const { watcher, metrics, close } = await setUp(settings, options);
  const health = await startHealthServer(settings.listen, metrics.registry, watcher);
  watcher.start();
  return {
    watcher,
    metrics,
    health,
    stop: async () => {
      await watcher.stop(STOP_GRACE_MS);
      await close();
      await health.close();
    },
  };
}

/**
 * `--once`: checks once, delivers what it found; resolves with the exit code: 0 when every part of
 * the metadata service was read and everything found reached core, else 1.
 */
export async function runOnce(settings: WatcherSettings, options: RunOptions): Promise<number> {
  const { watcher, close } = await setUp(settings, options);
  try {
    const result = await watcher.once(ONCE_DELIVERY_MS);
    options.logger.info({ notices: result.notices, delivered: result.delivered, complete: result.complete }, 'checked once');
    return result.delivered && result.complete ? 0 : 1;
  } finally {
    await watcher.stop(0);
    await close();
  }
}
