import { PluginClient, type ClientTlsFiles, type ClientTlsOptions, type KeepaliveOptions, type PluginLogger, type PluginTransport } from '@hollowtrees/grpcplugin';
import type { RetryConfig } from '../config/schema.js';
import type { ActionPlugin } from './action-plugin.js';

/** Settings of a plugin reached over gRPC. */
export interface GrpcActionPluginOptions {
  name: string;
  address: string;
  timeoutMs: number;
  retry: RetryConfig;
  tls?: ClientTlsOptions | ClientTlsFiles;
  /** Stream (with unary for a plugin without it, the default), or one forced. */
  transport?: PluginTransport;
  /** Where the client says it fell back to unary calls, and its TLS files were renewed or could not be. */
  logger?: PluginLogger;
  /** Pings that find a connection dropped on the way; `false`: none. Default: the SDK's. */
  keepalive?: KeepaliveOptions | false;
}

/** A plugin behind gRPC: one channel and one stream on it, opened once and reused by every call. */
export function grpcActionPlugin(options: GrpcActionPluginOptions): ActionPlugin {
  const { tls, transport, logger, keepalive } = options;
  const client = new PluginClient(options.address, {
    defaultTimeoutMs: options.timeoutMs,
    ...(tls ? { tls } : {}),
    ...(transport ? { transport } : {}),
    ...(logger ? { logger } : {}),
    ...(keepalive !== undefined ? { keepalive } : {}),
  });
  const stopObserving =
    tls && 'files' in tls
      ? tls.files.observe({
          onChange: () => logger?.info(`plugins.${options.name}.tls files read again: new connections to the plugin use them`),
          onError: (err) => logger?.warn(`plugins.${options.name}.tls files read again but not taken: the ones read before are still used`, { error: err.message }),
        })
      : undefined;
  return {
    name: options.name,
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    invoke: (event, call) =>
      client.handle(event, { flow: call.flow, attempt: call.attempt, config: call.config, timeoutMs: options.timeoutMs, signal: call.signal }),
    close: () => {
      stopObserving?.();
      return client.close();
    },
  };
}
