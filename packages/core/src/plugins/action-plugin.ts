import type { CloudEvent, PluginResponse } from '@hollowtrees/grpcplugin';
import type { RetryConfig } from '../config/schema.js';

/** One call of a plugin by a flow run. */
export interface PluginCall {
  flow: string;
  /** 1-based. */
  attempt: number;
  /** The flow's settings for this plugin, sent as the call's `config`. */
  config: Readonly<Record<string, string>>;
  /** Aborts the call (shutdown grace period over). */
  signal?: AbortSignal;
}

/**
 * A plugin as the flow engine sees it, whether it runs in-process (built-in)
 * or behind gRPC. Failures are thrown as `PluginError` with a gRPC code.
 */
export interface ActionPlugin {
  readonly name: string;
  /** Deadline of each call. */
  readonly timeoutMs: number;
  readonly retry: RetryConfig;
  invoke(event: CloudEvent, call: PluginCall): Promise<PluginResponse>;
  close(): Promise<void> | void;
}
