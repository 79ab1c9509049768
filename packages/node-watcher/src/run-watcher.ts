import { exponentialBackoff, listenFailure, pluginLogger, StartFailure, steadyClock, type Backoff, type Clock, type PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { WatcherSettings } from './cli-args.js';
import { AzureApprover } from './azure-approval.js';
import { NoticeFollow } from './notice-follow.js';
import { RunFollower } from './run-follow.js';
import { BOOT_ID_PATH, readBootId } from './boot-id.js';
import { AzureScheduledEventsMonitor } from './azure-scheduled-events.js';
import { CoreClient } from './core-client.js';
import { createMonitor } from './create-monitor.js';
import { detectCloud } from './detect-cloud.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import { NodeWatcher } from './node-watcher.js';
import type { CloudName } from './notice.js';
import { MAX_RETRY_WAIT_MS } from './poll-loop.js';
import { WatcherMetrics } from './watcher-metrics.js';

/**
 * The waits after failures unless told otherwise: 500 ms doubling to 5 s, jittered. Sends to core
 * too, not only metadata reads: a notice may give 30 s (an Azure Preempt, a Google Cloud
 * preemption), and a wait grown to 30 s while core restarted would spend all of it once core is
 * back. Only the notices waiting retry, so a core that comes back is not flooded; its own
 * Retry-After still holds, with the backoff on top.
 */
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: MAX_RETRY_WAIT_MS };

/** How long a watcher without `--cloud` tries to detect it before giving up (exit 1). */
const DETECT_WITHIN_MS = 120_000;
/** How long `--once` waits for core to accept what it found. */
const ONCE_DELIVERY_MS = 30_000;

/**
 * The warning of a watcher without `NODE_NAME`: its events carry no `labels.node`, and the k8s-drain
 * plugin then finds the node by `labels.instance_id` in `spec.providerID`, which it reads for AWS only.
 */
const NO_NODE_NAME =
  "NODE_NAME is not set: events carry no labels.node, and a drain finds the node only by labels.instance_id, which the k8s-drain plugin matches on AWS alone (on Google Cloud and Azure it finds no node); set NODE_NAME from the downward API's spec.nodeName";

/**
 * The warning of a Google Cloud watcher without a boot id: its notice ids cannot tell a preemption or
 * host maintenance in a later boot from the one before, which core then deduplicates while its group
 * cools down.
 */
const NO_BOOT_ID = 'no kernel boot id to read: a Google Cloud preemption or host maintenance after the VM restarted gets the id of the one before it, and core drops it while that one cools down';

/** What the bin (and a test) gives {@link runWatcher} besides the settings. */
export interface RunOptions {
  logger: Logger;
  /** Default: a new registry. */
  registry?: Registry;
  /**
   * Default: `steadyClock`, so that a step of the wall clock (NTP after a VM resumed) neither ends the follow of a run
   * early nor stretches a wait; the times it sends and shows are on the wall clock still.
   */
  clock?: Clock;
  /** Default: 500 ms doubling to 5 s, jittered. */
  backoff?: Backoff;
  /** The running kernel's boot id, which Google Cloud's notice ids name. Default: read from {@link BOOT_ID_PATH}. */
  bootId?: string;
}

/** A watcher running as the bin runs it. */
export interface RunningWatcher {
  readonly watcher: NodeWatcher;
  readonly metrics: WatcherMetrics;
  /** Where /healthz, /readyz and /metrics are served. */
  readonly health: HealthServer;
  /** Stops polling, lets queued events reach core for up to `settings.stopGraceMs`, closes the servers. */
  stop(): Promise<void>;
}

/** Why a watcher could not start, for the bin to print before exiting with its code (1 unless the operator must change a flag). */
export class StartError extends StartFailure {
  override readonly name = 'StartError';
}

/**
 * The cloud `--cloud` names, else the one whose metadata service answers, asked again (each wait
 * capped as the identity read's) until {@link DETECT_WITHIN_MS} has passed: a metadata service
 * briefly out at boot must not exit the watcher into a crash loop's back-off, during which notices go
 * unseen. Each failed round is logged and told to `waiting`, which `/readyz` reports.
 * @throws StartError when no metadata service answered in time.
 */
async function cloudOf(settings: WatcherSettings, clock: Clock, backoff: Backoff, logger: PluginLogger, waiting: (why: string) => void): Promise<CloudName> {
  if (settings.cloud) return settings.cloud;
  const where = settings.metadataUrl ?? 'the AWS, Google Cloud and Azure metadata addresses';
  const why = `no metadata service at ${where} answered as AWS, Google Cloud or Azure would`;
  const deadline = clock.now() + DETECT_WITHIN_MS;
  // Said before the first probe: off-cloud each one hangs for its whole timeout, and a silent wait of minutes looks hung.
  logger.info('detecting the cloud: asking each metadata service (pass --cloud to skip this)', { metadata: where, for_up_to_s: DETECT_WITHIN_MS / 1_000 });
  for (let failures = 1; ; failures++) {
    const cloud = await detectCloud({ ...(settings.metadataUrl !== undefined && { baseUrl: settings.metadataUrl }), signal: AbortSignal.timeout(10_000) });
    if (cloud) return cloud;
    if (clock.now() >= deadline) throw new StartError(`${why} within ${DETECT_WITHIN_MS / 1_000} s; pass --cloud (and --metadata-url when it is elsewhere)`);
    waiting(`the cloud is not detected yet: ${why}`);
    logger.warn('cannot detect the cloud; retrying', { metadata: where, tries: failures });
    await clock.sleep(Math.min(backoff(failures), MAX_RETRY_WAIT_MS));
  }
}

async function setUp(settings: WatcherSettings, options: RunOptions, metrics: WatcherMetrics, waiting: (why: string) => void = () => undefined): Promise<{ watcher: NodeWatcher; close: () => Promise<void> }> {
  const clock = options.clock ?? steadyClock;
  const backoff = options.backoff ?? exponentialBackoff(DEFAULT_BACKOFF);
  const logger = pluginLogger(options.logger);
  const cloud = await cloudOf(settings, clock, backoff, logger, waiting);
  // Said at start, not found out at the first notice, when the drain fails with seconds left.
  if (settings.nodeName === undefined) logger.warn(NO_NODE_NAME, { cloud });
  const bootId = options.bootId ?? readBootId();
  if (cloud === 'gcp' && bootId === undefined) logger.warn(NO_BOOT_ID, { cloud, path: BOOT_ID_PATH });
  const monitor = createMonitor({
    cloud,
    ...(settings.metadataUrl !== undefined && { metadataUrl: settings.metadataUrl }),
    ...(settings.pollIntervalMs !== undefined && { pollIntervalMs: settings.pollIntervalMs }),
    azureEventTypes: settings.azureEventTypes,
    ...(bootId !== undefined && { bootId }),
    ...(settings.stateFile !== undefined && { stateFile: settings.stateFile }),
    backoff,
    clock,
  });
  const client = settings.dryRun || settings.coreUrl === undefined ? undefined : new CoreClient({ coreUrl: settings.coreUrl, ...(settings.auth && { auth: settings.auth }), ...(settings.ca && { ca: settings.ca }) });
  if (settings.azureApprove && !(monitor instanceof AzureScheduledEventsMonitor)) logger.warn('--azure-approve ignored: this is not Azure', { cloud });
  const approver = settings.azureApprove && client && monitor instanceof AzureScheduledEventsMonitor ? new AzureApprover({ approve: (id, s) => monitor.approve(id, s), logger }) : undefined;
  // One follow of core's runs per accepted notice serves both uses; --once exits at core's 200, before any run ends.
  const follower =
    client && !settings.once && (approver || settings.maxResends > 0)
      ? new RunFollower({ runsOf: (id, s) => client.runsOf(id, s), groupsOf: (id, s) => client.groupsOf(id, s), intervalMs: settings.pollIntervalMs ?? 1_000, clock, logger })
      : undefined;
  let follow: NoticeFollow | undefined;
  const watcher = new NodeWatcher({
    monitor,
    nodeName: settings.nodeName,
    send: client && (async (event, signal) => client.post(follow ? await follow.toSend(event, signal) : event, signal)),
    clock,
    backoff,
    logger,
    metrics,
    ...(follower && { onAccepted: (event) => follow?.accepted(event) }),
  });
  if (client && follower) {
    follow = new NoticeFollow({
      follower,
      runsOf: (id, s) => client.runsOf(id, s),
      listed: (id) => watcher.lists(id),
      resend: (event) => watcher.resend(event),
      maxResends: settings.maxResends,
      ...(approver && { approver }),
      logger,
      metrics,
    });
  }
  return {
    watcher,
    close: async () => {
      await follower?.close();
      client?.close();
    },
  };
}

/** Why the health server could not listen, as an operator fixes it, and the exit code (2: the flag must change, as core's). */
function listenFailed(listen: string, err: unknown): StartError {
  const { reason, notThisMachine } = listenFailure(err);
  return new StartError(`--listen ${listen}: ${reason}`, notThisMachine ? 2 : 1);
}

/**
 * Starts the watcher: /healthz, /readyz and /metrics on `settings.listen` first, then the cloud's
 * detection (resolving once it is known), identity, polling and delivery.
 * @throws StartError when `--listen` cannot be served or no metadata service answered within 2 minutes.
 */
export async function runWatcher(settings: WatcherSettings, options: RunOptions): Promise<RunningWatcher> {
  const metrics = new WatcherMetrics(options.registry ?? new Registry());
  // Served from the start, so a watcher still detecting its cloud is live but not ready.
  let watcher: NodeWatcher | undefined;
  let detecting = 'the cloud is not detected yet';
  const health = await startHealthServer(settings.listen, metrics.registry, {
    status: () => watcher?.status() ?? { cloud: null, instance_id: null, last_poll: null, pending: 0 },
    notReady: () => (watcher ? watcher.notReady() : detecting),
  }).catch((err: unknown) => {
    throw listenFailed(settings.listen, err);
  });
  let close: () => Promise<void>;
  try {
    ({ watcher, close } = await setUp(settings, options, metrics, (why) => (detecting = why)));
  } catch (err) {
    await health.close();
    throw err;
  }
  watcher.start();
  return {
    watcher,
    metrics,
    health,
    stop: async () => {
      await watcher.stop(settings.stopGraceMs);
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
  const { watcher, close } = await setUp(settings, options, new WatcherMetrics(options.registry ?? new Registry()));
  try {
    const result = await watcher.once(ONCE_DELIVERY_MS);
    options.logger.info({ notices: result.notices, delivered: result.delivered, complete: result.complete }, 'checked once');
    return result.delivered && result.complete ? 0 : 1;
  } finally {
    await watcher.stop(0);
    await close();
  }
}
