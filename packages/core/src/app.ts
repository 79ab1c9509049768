import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Clock } from './clock.js';
import type { LoadedConfig } from './config/load-config.js';
import { readNamedFile } from './config/read-named-file.js';
import { FlowEngine } from './flow/flow-engine.js';
import type { GroupStates } from './flow/group-states.js';
import { StateJournal } from './flow/state-journal.js';
import { createLogger } from './logger.js';
import { CoreMetrics } from './metrics.js';
import type { ActionPlugin } from './plugins/action-plugin.js';
import { dryRunPlugin } from './plugins/dry-run-plugin.js';
import { buildPlugins } from './plugins/plugin-registry.js';
import { createAuthenticator } from './receiver/auth.js';
import { Receiver } from './receiver/receiver-server.js';
import { groupView, runView } from './receiver/status-view.js';

/** Options for {@link startHollowtrees}; every field has a default. */
export interface StartOptions {
  /** Run the flows but log what each plugin would get instead of calling it. Default false. */
  dryRun?: boolean;
  /** Default: a JSON logger on stdout at the configured level. */
  logger?: Logger;
  /** Default: a new registry (never the global one). */
  registry?: Registry;
  /** Default: the system clock. */
  clock?: Clock;
  /** Override the configured listen address, e.g. `127.0.0.1:0` in tests. */
  listen?: string;
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
   * Swaps in a new configuration's flows, plugins, limits and auth. Groups
   * running or cooling down stay held; runs in flight finish on the old
   * plugins. The listen address, TLS and state file need a restart.
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
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '0.0.0.0';
  return { host, port: Number(listen.slice(i + 1)) };
}

function readReceiverTls(loaded: LoadedConfig): { cert: Buffer; key: Buffer } | undefined {
  const tls = loaded.config.server.tls;
  if (!tls) return undefined;
  return { cert: readNamedFile(tls.cert, loaded.file, 'server.tls.cert'), key: readNamedFile(tls.key, loaded.file, 'server.tls.key') };
}

/** Starts the receiver and the flow engine on a validated configuration. */
export async function startHollowtrees(loaded: LoadedConfig, options: StartOptions = {}): Promise<Hollowtrees> {
  const logger = options.logger ?? createLogger(loaded.config.log.level);
  for (const warning of loaded.warnings) logger.warn(warning);
  const metrics = new CoreMetrics(options.registry ?? new Registry());
  const clockOption = options.clock ? { clock: options.clock } : {};
  const tls = readReceiverTls(loaded);

  const stateFile = loaded.config.state?.file;
  const opened = stateFile
    ? StateJournal.open(stateFile, { onError: (err, unwrittenLines) => logger.error({ err, file: stateFile, unwrittenLines }, 'could not write run state; runs go on, the journal catches up when the disk recovers') })
    : undefined;
  const journal = opened?.journal;

  const buildRuntime = (next: LoadedConfig, states: GroupStates | undefined): Runtime => {
    const built = buildPlugins(next.config, next.file, logger);
    const plugins = new Map([...built].map(([name, plugin]) => [name, options.dryRun ? dryRunPlugin(plugin, logger) : plugin]));
    const engine = new FlowEngine({ flows: next.config.flows, plugins, logger, metrics, ...clockOption, ...(states ? { states } : {}), ...(journal ? { journal } : {}) });
    return { engine, plugins };
  };
  const closePlugins = async (runtime: Runtime): Promise<void> => {
    for (const plugin of runtime.plugins.values()) await plugin.close();
  };
  const closeRuntime = async (runtime: Runtime, graceMs: number): Promise<void> => {
    await runtime.engine.shutdown(graceMs);
    await closePlugins(runtime);
  };
  /** Runtimes a reload replaced, still finishing their runs on their own plugins. */
  const retiring = new Set<Runtime>();

  let current = buildRuntime(loaded, undefined);
  let config = loaded.config;
  if (opened) {
    const { cooling, interrupted } = current.engine.recover(opened.recovered.states);
    logger.info({ file: stateFile, cooling, interrupted, unreadableLines: opened.recovered.skippedLines }, 'run state restored');
  }
  const sweeper = setInterval(() => current.engine.sweep(), 30_000).unref();
  metrics.beforeCollect(() => current.engine.updateCoolingGauge());

  const { host, port } = splitListen(options.listen ?? config.server.listen);
  const receiver = new Receiver({
    host,
    port,
    limits: config.server.limits,
    timeouts: config.server.timeouts,
    sink: (event, receivedAt) => current.engine.dispatch(event, receivedAt),
    status: {
      flows: () => current.engine.flowStatus(),
      groups: (limit) => {
        const all = current.engine.groups();
        return { groups: all.slice(0, limit).map(groupView), total: all.length };
      },
      runs: () => current.engine.recentRuns().map(runView),
    },
    metrics,
    logger,
    authenticate: createAuthenticator(config.server.auth, loaded.file),
    ...(tls ? { tls } : {}),
    ...(options.clock ? { now: () => new Date(options.clock!.now()) } : {}),
  });
  const address = await receiver.listen().catch(async (err: NodeJS.ErrnoException) => {
    clearInterval(sweeper);
    await closeRuntime(current, 0);
    await journal?.close();
    const reason = err.code === 'EADDRINUSE' ? `port ${port} is already in use` : err.message;
    throw new Error(`cannot listen on ${host}:${port}: ${reason}`, { cause: err });
  });
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${urlHost}:${address.port}`;
  logger.info({ listen: `${urlHost}:${address.port}`, tls: Boolean(tls), auth: Boolean(config.server.auth), config: loaded.file, flows: Object.keys(config.flows), dryRun: options.dryRun ?? false }, 'hollowtrees started');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    get engine() {
      return current.engine;
    },
    metrics,
    logger,
    async reload(next) {
      if (closing) throw new Error('shutting down: configuration not reloaded');
      for (const warning of next.warnings) logger.warn(warning);
      const needsRestart: string[] = (['listen', 'tls', 'timeouts'] as const).filter((k) => JSON.stringify(next.config.server[k]) !== JSON.stringify(config.server[k]));
      if (JSON.stringify(next.config.state) !== JSON.stringify(config.state)) needsRestart.push('state');
      const authenticate = createAuthenticator(next.config.server.auth, next.file);
      const previous = current;
      current = buildRuntime(next, previous.engine.states);
      receiver.update({ limits: next.config.server.limits, authenticate });
      config = next.config;
      logger.info({ config: next.file, flows: Object.keys(next.config.flows), ...(needsRestart.length ? { needsRestart } : {}) }, 'configuration reloaded');
      // Runs in flight finish on the old plugins, however long their deadlines and retries take; nothing is cancelled.
      retiring.add(previous);
      await previous.engine.drain();
      await closePlugins(previous);
      retiring.delete(previous);
    },
    close: () =>
      (closing ??= (async () => {
        receiver.stopAccepting();
        // Runtimes still retiring after a reload get the same grace period; all must be done before the journal closes.
        await Promise.all([current, ...retiring].map((runtime) => closeRuntime(runtime, config.server.shutdownGracePeriod)));
        await receiver.close();
        clearInterval(sweeper);
        await journal?.close();
        logger.info('hollowtrees stopped');
        logger.flush();
      })()),
  };
}
