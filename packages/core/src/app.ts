import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { listenFailure, systemClock, wallAheadOf, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import { readConfigFiles, type ConfigFiles } from './config/config-files.js';
import type { LoadedConfig } from './config/load-config.js';
import { ConfigError } from './config/config-error.js';
import { LISTEN_FORMAT, parseListenAddress } from './config/listen-address.js';
import { addedFlows } from './flow/added-flows.js';
import { FlowEngine } from './flow/flow-engine.js';
import { FlowSlots } from './flow/bounded-queue.js';
import { HeldBytes } from './flow/held-bytes.js';
import { RecentRuns, RUNS_KEPT_BY_EVENT, withSharedRuns } from './flow/recent-runs.js';
import { RunListeners } from './flow/run-listeners.js';
import { createLogger } from './logger.js';
import { CoreMetrics } from './metrics.js';
import type { ActionPlugin } from './plugins/action-plugin.js';
import { dryRunPlugin } from './plugins/dry-run-plugin.js';
import { buildPlugins } from './plugins/plugin-registry.js';
import { grpcPluginFactory, type GrpcPluginFactory } from './plugins/grpc-plugin-factory.js';
import { createAuthenticator } from './receiver/auth.js';
import { Receiver } from './receiver/receiver-server.js';
import { groupView, runView, sourceView } from './receiver/status-view.js';
import type { EventSink } from './sources/event-sink.js';
import type { EventSource } from './sources/event-source.js';
import { SourceSet } from './sources/source-set.js';
import { openStateStore } from './state/open-store.js';
import { runStateClock } from './state/run-state-clock.js';
import { configuredSources } from './sources/configured-sources.js';
import { SqsRegionMissing } from './sources/sqs/sqs-region.js';

/** Options for {@link startHollowtrees}; every field has a default. */
export interface StartOptions {
  /**
   * Run the flows but log what each plugin would get instead of calling it, with run state in
   * memory only and no `sources.sqs` queue read, so nothing the core that acts shares is touched.
   * Default false.
   */
  dryRun?: boolean;
  /** Default: a JSON logger on stdout at the configured level. */
  logger?: Logger;
  /** Default: a new registry (never the global one). */
  registry?: Registry;
  /**
   * Default: {@link runStateClock}, for the run state, the receiver, the SQS
   * sources and the plugins; the system clock for the spot price sources (AWS's price samples are wall-clock times).
   */
  clock?: Clock;
  /** Override the configured listen address, e.g. `127.0.0.1:0` in tests. */
  listen?: string;
  /**
   * Told when Hollowtrees had to stop by itself (it lost the lock on its state
   * file), after it closed. Default: nothing more is done.
   */
  onFatal?: (err: Error) => void;
}

/** A running Hollowtrees: receiver, flow engine and plugins. */
export interface Hollowtrees {
  /** Base URL of the receiver, e.g. `http://127.0.0.1:9092`. */
  readonly url: string;
  readonly port: number;
  /** The engine running now (a reload replaces it). */
  readonly engine: FlowEngine;
  readonly metrics: CoreMetrics;
  readonly logger: Logger;
  /**
   * Swaps in a new configuration's flows, plugins, limits, auth, log level and the
   * receiver's TLS certificate and key (read again from their files). Groups
   * running or cooling down stay held; runs in flight finish on the old
   * plugins. The listen address, TLS turned on or off and the state file need a restart.
   */
  reload(next: LoadedConfig): Promise<void>;
  /**
   * Graceful stop: readiness goes false and new alerts get 503, runs in flight
   * finish within the configured grace period (then are cancelled), the state
   * is flushed to disk, plugins are closed.
   */
  close(): Promise<void>;
}

interface Runtime {
  engine: FlowEngine;
  plugins: Map<string, ActionPlugin>;
  /** Set by the first close of its plugins: a reload's and a shutdown's, when they overlap, close them once. */
  pluginsClosed?: Promise<void>;
}

/** How often the store's upkeep runs (the journal checks that its file is still the one on disk, and compacts). */
const JOURNAL_CHECK_MS = 5_000;
/** How often cooldowns that are over are forgotten. */
const SWEEP_MS = 30_000;
/**
 * How old the shared store's list may be that answers a read of the runs (several replicas): a follower reads them every
 * few seconds, and a wave of followers would otherwise cost a list of every Lease at each read.
 */
const RUNS_VIEW_MAX_AGE_MS = 2_000;

/** Start-up failed for a reason its message says in full (e.g. the port is in use): no stack to show. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Starts the receiver and the flow engine on a validated configuration. */
export async function startHollowtrees(loaded: LoadedConfig, options: StartOptions = {}): Promise<Hollowtrees> {
  const logger = options.logger ?? createLogger(loaded.config.log.level);
  for (const warning of loaded.warnings) logger.warn(warning);
  const metrics = new CoreMetrics(options.registry ?? new Registry());
  const clock = options.clock ?? runStateClock;
  /** The status API shows run state on the wall clock, as people read it. */
  const wallAhead = wallAheadOf(clock);
  const files = await readConfigFiles(loaded);
  const grpcPlugin = await grpcPluginFactory(loaded.config);
  metrics.tls.track(files);
  const tls = files.receiverTls;
  /** The certificate files the receiver serves: a reload renews them, but turns TLS neither on nor off. */
  let servedTls = tls;
  const authenticate = createAuthenticator(files.credentials);

  let stopBecause: ((err: Error) => void) | undefined;
  const { store, maintain, reportRecovery } = await openStateStore({ loaded, logger, metrics, clock, ...(files.kubeconfig === undefined ? {} : { kubeconfig: files.kubeconfig }), onFatal: (err) => stopBecause?.(err), dryRun: options.dryRun ?? false });
  /**
   * Closes the store; what it could not save is logged, never thrown over the reason for stopping. At `error`: the
   * changes lost (a full disk at shutdown) make the restart act again on runs that had ended.
   */
  const closeStore = (): Promise<void> => store.close().catch((err: unknown) => logger.error({ err, backend: store.backend }, 'could not close the run-state store'));
  const heldBytes = new HeldBytes(loaded.config.state.maxQueuedBytes);
  const listeners = new RunListeners();
  const slots = new FlowSlots();
  const recent = new RecentRuns(100, RUNS_KEPT_BY_EVENT);

  const buildRuntime = (next: LoadedConfig, nextFiles: ConfigFiles, grpcPlugin: GrpcPluginFactory | undefined): Runtime => {
    const built = buildPlugins(next.config, nextFiles.pluginTls, logger, grpcPlugin, clock);
    const plugins = new Map([...built].map(([name, plugin]) => [name, options.dryRun ? dryRunPlugin(plugin, logger) : plugin]));
    const engine = new FlowEngine({ flows: next.config.flows, plugins, logger, metrics: metrics.engine, store, heldBytes, listeners, slots, recent, clock });
    return { engine, plugins };
  };
  const closePlugins = (runtime: Runtime): Promise<void> =>
    (runtime.pluginsClosed ??= (async () => {
      for (const plugin of runtime.plugins.values()) await plugin.close();
    })());
  const closeRuntime = async (runtime: Runtime, graceMs: number): Promise<void> => {
    await runtime.engine.shutdown(graceMs);
    await closePlugins(runtime);
  };
  /** Runtimes a reload replaced, still finishing their runs on their own plugins. */
  const retiring = new Set<Runtime>();

  let current: Runtime;
  try {
    current = buildRuntime(loaded, files, grpcPlugin);
  } catch (err) {
    await closeStore();
    throw err;
  }
  let config = loaded.config;
  if (store.recovered.length > 0 || store.backend === 'file') reportRecovery(current.engine.recover(store.recovered, store.recoveredFailures));
  // A run another replica cut short goes on here without waiting for its event again.
  store.onCutShort((run) => current.engine.goOnWith(run));
  const sweeper = setInterval(() => current.engine.sweep(), SWEEP_MS).unref();
  const checker = setInterval(() => void maintain(), JOURNAL_CHECK_MS).unref();
  /** Undoes what start-up did so far, when the receiver cannot start. */
  const closeStarted = async (): Promise<void> => {
    clearInterval(sweeper);
    clearInterval(checker);
    await closeRuntime(current, 0);
    await closeStore();
  };

  const listen = options.listen ?? config.server.listen;
  // Neither the address nor the system's message (which repeats it) when it came from ${VAR}.
  const shownListen = options.listen ?? loaded.display.plain('server.listen', config.server.listen);
  const listenProblem = (message: string): ConfigError =>
    options.listen === undefined
      ? new ConfigError(loaded.file, [{ path: 'server.listen', message: `${loaded.display.quoted('server.listen', listen)}: ${message}` }])
      : new ConfigError('--listen', [{ path: '', message: `${JSON.stringify(listen)}: ${message}` }]);
  const parsedListen = parseListenAddress(listen);
  if (!parsedListen) {
    await closeStarted();
    throw listenProblem(LISTEN_FORMAT);
  }
  const { host, port } = parsedListen;
  /** Every source hands its events to the engine running now (a reload replaces it). */
  const sink: EventSink = {
    accept: (event, receivedAt, onSettled, options) => current.engine.dispatch(event, receivedAt, onSettled, options),
    mark: () => current.engine.mark(),
    commit: (since) => current.engine.commit(since),
    noRoom: () => current.engine.noRoom(),
    get durable() {
      return current.engine.durable;
    },
    backend: store.backend,
  };
  const receiver: Receiver = new Receiver({
    host,
    port,
    limits: config.server.limits,
    timeouts: config.server.timeouts,
    status: {
      sources: (): unknown => sources.statuses().map(sourceView),
      flows: () => current.engine.flowStatus(),
      groups: async (limit, events) => {
        // Read after a write to another replica (a follower that sent its event there), it must see that replica's run.
        await store.catchUp(0, 'groups');
        const all = current.engine.groups(events);
        const ahead = wallAhead();
        return { groups: all.slice(0, limit).map((group) => groupView(group, ahead)), total: all.length };
      },
      runs: async (events) => {
        await store.catchUp(RUNS_VIEW_MAX_AGE_MS, 'runs');
        const ahead = wallAhead();
        return withSharedRuns(current.engine.recentRuns(events), store.sharedRuns(events)).map((run) => runView(run, ahead));
      },
      state: () => store.describe(),
    },
    metrics: metrics.receiver,
    logger,
    authenticate,
    ...(tls ? { tls } : {}),
    clock,
  });
  // A dry run reads no queue: a receive hides a notice from the core that acts on it, and the dry run's run would delete it.
  if (options.dryRun && config.sources.sqs.length > 0) logger.warn({ queues: config.sources.sqs.length }, 'dry run: sources.sqs are not read');
  const readSources = options.dryRun ? { ...config.sources, sqs: [] } : config.sources;
  // The receiver first: it serves health and status while the others start.
  const sources: SourceSet = new SourceSet([receiver, ...(await configuredSources(readSources, metrics, logger, { runState: clock, wall: options.clock ?? systemClock }))]);
  /** Why a source could not start, as the CLI shows it. */
  const startProblem = (source: EventSource, err: unknown): Error => {
    if (err instanceof SqsRegionMissing) return new ConfigError(loaded.file, [{ path: `sources.sqs[${err.index}].region`, message: err.message }]);
    if (source !== receiver) return new StartupError(`source "${source.name}" cannot start: ${err instanceof Error ? err.message : String(err)}`);
    // An address this machine does not have is a mistake in the configuration (exit 2); a port in use is not.
    const { reason, notThisMachine } = listenFailure(err);
    return notThisMachine ? listenProblem(reason) : new StartupError(`cannot listen on ${shownListen}: ${reason}`);
  };
  await sources.start(sink, startProblem).catch(async (err: unknown) => {
    await closeStarted();
    throw err;
  });
  const { address } = receiver;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${urlHost}:${address.port}`;
  logger.info({ listen: `${urlHost}:${address.port}`, tls: Boolean(tls), auth: Boolean(config.server.auth), config: loaded.file, flows: Object.keys(config.flows), dryRun: options.dryRun ?? false }, 'hollowtrees started');

  let closing: Promise<void> | undefined;
  const shuttingDown = (): Error => new Error('shutting down: configuration not reloaded');
  const app: Hollowtrees = {
    url,
    port: address.port,
    get engine() {
      return current.engine;
    },
    metrics,
    logger,
    async reload(next) {
      if (closing) throw shuttingDown();
      for (const warning of next.warnings) logger.warn(warning);
      // Against what the process started with: a reload before this one did not apply these either.
      const started = loaded.config;
      const needsRestart: string[] = (['listen', 'timeouts'] as const).filter((k) => JSON.stringify(next.config.server[k]) !== JSON.stringify(started.server[k]));
      // A renewed certificate and key are taken now; HTTP turned into HTTPS or back is not.
      if ((next.config.server.tls === undefined) !== (started.server.tls === undefined)) needsRestart.push('tls');
      // Only maxQueuedBytes is taken at once; the store and its other settings are opened at start.
      if (JSON.stringify({ ...next.config.state, maxQueuedBytes: 0 }) !== JSON.stringify({ ...started.state, maxQueuedBytes: 0 })) needsRestart.push('state');
      if (JSON.stringify(next.config.sources) !== JSON.stringify(started.sources)) needsRestart.push('sources');
      const nextFiles = await readConfigFiles(next);
      const nextGrpcPlugin = await grpcPluginFactory(next.config);
      // A shutdown that began while the files were read closes the runtime it found: one built now would be left open.
      if (closing) throw shuttingDown();
      const authenticate = createAuthenticator(nextFiles.credentials);
      // Before the plugins are built: their loggers are children, which copy the level when made.
      // Only a change in the file moves it, so a logger handed in at its own level keeps it otherwise.
      if (next.config.log.level !== config.log.level) logger.level = next.config.log.level;
      const previous = current;
      current = buildRuntime(next, nextFiles, nextGrpcPlugin);
      // In the same turn as the swap: an event a source hands in from now on reaches the added flows; one before did not.
      const added = addedFlows(config.flows, next.config.flows);
      if (added.size > 0) sources.flowsAdded(added);
      if (servedTls && nextFiles.receiverTls) servedTls = nextFiles.receiverTls;
      metrics.tls.track({ receiverTls: servedTls, pluginTls: nextFiles.pluginTls });
      heldBytes.limit = next.config.state.maxQueuedBytes;
      receiver.update({ limits: next.config.server.limits, authenticate, ...(servedTls ? { tls: servedTls } : {}) });
      config = next.config;
      logger.info({ config: next.file, flows: Object.keys(next.config.flows), ...(needsRestart.length ? { needsRestart } : {}) }, 'configuration reloaded');
      // Runs in flight finish on the old plugins, however long their deadlines and retries take; nothing is cancelled.
      retiring.add(previous);
      await previous.engine.retire(current.engine);
      await closePlugins(previous);
      retiring.delete(previous);
    },
    close: () =>
      (closing ??= (async () => {
        await sources.stop();
        // Runtimes still retiring after a reload get the same grace period; all must be done before the store closes.
        await Promise.all([current, ...retiring].map((runtime) => closeRuntime(runtime, config.server.shutdownGracePeriod)));
        await sources.close();
        clearInterval(sweeper);
        clearInterval(checker);
        await closeStore();
        logger.info('hollowtrees stopped');
        logger.flush();
      })()),
  };
  stopBecause = (err) => void app.close().then(() => options.onFatal?.(err));
  return app;
}
