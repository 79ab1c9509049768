import { PluginClient, type ClientTlsOptions } from '@hollowtrees/grpcplugin';
import type { RetryConfig } from '../config/schema.js';
import type { ActionPlugin } from './action-plugin.js';

/** Settings of a plugin reached over gRPC. */
export interface GrpcActionPluginOptions {
  name: string;
  address: string;
  timeoutMs: number;
  retry: RetryConfig;
  tls?: ClientTlsOptions;
}

/** A plugin behind gRPC: one channel, opened once and reused by every call. */
export function grpcActionPlugin(options: GrpcActionPluginOptions): ActionPlugin {
  const client = new PluginClient(options.address, { defaultTimeoutMs: options.timeoutMs, ...(options.tls ? { tls: options.tls } : {}) });
  return {
    name: options.name,
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    invoke: (event, call) =>
      client.handle(event, { flow: call.flow, attempt: call.attempt, timeoutMs: options.timeoutMs, ...(call.signal ? { signal: call.signal } : {}) }),
    close: () => client.close(),
  };
}
