import { invokeHandler, systemClock, type Clock, type EventHandler } from '@hollowtrees/grpcplugin/without-grpc';
import type { RetryConfig } from '../config/schema.js';
import type { ActionPlugin } from './action-plugin.js';

/**
 * Runs an SDK `EventHandler` in-process with the same contract as a gRPC
 * plugin (the SDK's {@link invokeHandler}): a deadline with an AbortSignal, and
 * errors as PluginError codes.
 */
export function handlerActionPlugin(name: string, handler: EventHandler, timeoutMs: number, retry: RetryConfig, clock: Clock = systemClock): ActionPlugin {
  return {
    name,
    timeoutMs,
    retry,
    async invoke(event, call) {
      const outcome = await invokeHandler(handler, event, { flow: call.flow, attempt: call.attempt, config: call.config, timeoutMs, clock, ...(call.signal && { signal: call.signal }) });
      if (!outcome.ok) throw outcome.error;
      return outcome.result;
    },
    close: () => {},
  };
}
