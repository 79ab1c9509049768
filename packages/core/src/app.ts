import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Clock } from './clock.js';
import type { LoadedConfig } from './config/load-config.js';
import { FlowEngine } from './flow/flow-engine.js';
import { createLogger } from './logger.js';
import { CoreMetrics } from './metrics.js';
import type { ActionPlugin } from './plugins/action-plugin.js';
import { dryRunPlugin } from './plugins/dry-run-plugin.js';
import { buildPlugins } from './plugins/plugin-registry.js';
import { Receiver } from './receiver/receiver-server.js';

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
  readonly engine: FlowEngine;
  readonly metrics: CoreMetrics;
  readonly logger: Logger;
  /**
   * Graceful stop: readiness goes false and new alerts get 503, runs in flight
   * finish within the configured grace period (then are cancelled), plugins
   * are closed.
   */
  close(): Promise<void>;
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '0.0.0.0';
  return { host, port: Number(listen.slice(i + 1)) };
}

/** Starts the receiver and the flow engine on a validated configuration. */
export async function startHollowtrees(loaded: LoadedConfig, options: StartOptions = {}): Promise<Hollowtrees> {
  const { config } = loaded;
  const logger = options.logger ?? createLogger(config.log.level);
  for (const warning of loaded.warnings) logger.warn(warning);
  const metrics = new CoreMetrics(options.registry ?? new Registry());

  const built = buildPlugins(config, loaded.file, logger);
  const plugins = new Map<string, ActionPlugin>(
    [...built].map(([name, plugin]) => [name, options.dryRun ? dryRunPlugin(plugin, logger) : plugin]),
  );
  const engine = new FlowEngine({ flows: config.flows, plugins, logger, metrics, ...(options.clock ? { clock: options.clock } : {}) });
  const sweeper = setInterval(() => engine.sweep(), 30_000).unref();
  metrics.beforeCollect(() => engine.updateCoolingGauge());

  const { host, port } = splitListen(options.listen ?? config.server.listen);
  const receiver = new Receiver({
    host,
    port,
    limits: config.server.limits,
    sink: (event, receivedAt) => engine.dispatch(event, receivedAt),
    status: { flows: () => engine.flowStatus(), groups: () => engine.groups(), runs: () => engine.recentRuns() },
    metrics,
    logger,
    ...(options.clock ? { now: () => new Date(options.clock!.now()) } : {}),
  });
  const address = await receiver.listen().catch((err: NodeJS.ErrnoException) => {
    for (const plugin of plugins.values()) void plugin.close();
    clearInterval(sweeper);
    const reason = err.code === 'EADDRINUSE' ? `port ${port} is already in use` : err.message;
    throw new Error(`cannot listen on ${host}:${port}: ${reason}`, { cause: err });
  });
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ listen: `${urlHost}:${address.port}`, config: loaded.file, flows: Object.keys(config.flows), dryRun: options.dryRun ?? false }, 'hollowtrees started');

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    engine,
    metrics,
    logger,
    close: () =>
      (closing ??= (async () => {
        receiver.stopAccepting();
        await engine.shutdown(config.server.shutdownGracePeriod);
        await receiver.close();
        clearInterval(sweeper);
        for (const plugin of plugins.values()) await plugin.close();
        logger.info('hollowtrees stopped');
        logger.flush();
      })()),
  };
}
