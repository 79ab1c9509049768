import { Code, PluginError, type EventHandler } from '@hollowtrees/grpcplugin';
import { systemClock, type Clock } from '../clock.js';
import type { RetryConfig } from '../config/schema.js';
import type { ActionPlugin } from './action-plugin.js';

/**
 * Runs an SDK `EventHandler` in-process with the same contract as a gRPC
 * plugin: a deadline with an AbortSignal, and errors as PluginError codes.
 */
export function handlerActionPlugin(name: string, handler: EventHandler, timeoutMs: number, retry: RetryConfig, clock: Clock = systemClock): ActionPlugin {
  return {
    name,
    timeoutMs,
    retry,
    async invoke(event, call) {
      const deadline = new Date(clock.now() + timeoutMs);
      const timeout = new AbortController();
      // Ends the deadline's sleep once the call is over, so no timer outlives it.
      const over = new AbortController();
      clock.sleep(timeoutMs, over.signal).then(() => timeout.abort(), () => {});
      const signal = call.signal ? AbortSignal.any([timeout.signal, call.signal]) : timeout.signal;
      const expired = new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(new PluginError(timeout.signal.aborted ? Code.DeadlineExceeded : Code.Canceled, `${name}: call aborted`)), { once: true }),
      );
      expired.catch(() => {}); // only observed when it wins the race below
      try {
        const result = await Promise.race([Promise.resolve(handler.handle(event, { flow: call.flow, attempt: call.attempt, deadline, signal })), expired]);
        return { status: result?.status ?? 'ok', message: result?.message ?? '', attributes: result?.attributes ?? {} };
      } finally {
        over.abort();
      }
    },
    close: () => {},
  };
}
