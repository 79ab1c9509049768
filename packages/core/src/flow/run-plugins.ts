import { codeName, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';
import type { Clock } from '../clock.js';
import type { ActionPlugin } from '../plugins/action-plugin.js';
import { backoffDelay } from './retry-policy.js';

/** One plugin call of a run. */
export interface PluginCallRecord {
  plugin: string;
  attempt: number;
  /** `OK`, or the gRPC code name of the failure. */
  code: string;
  message: string;
  startedAt: number;
  durationMs: number;
}

/** How a run ended. */
export type RunOutcome = 'succeeded' | 'failed' | 'interrupted';

export interface RunResult {
  outcome: RunOutcome;
  /** Why it failed, naming the plugin. */
  error?: string;
  calls: PluginCallRecord[];
  /** The event as the last plugin saw it, attributes merged. */
  event: CloudEvent;
}

export interface RunDependencies {
  clock: Clock;
  random: () => number;
  /** Aborts the run: the call in flight is cancelled and the run ends interrupted. */
  signal: AbortSignal;
  onCall?: (record: PluginCallRecord) => void;
}

/** Returns the event with `attributes` merged into `data.labels`, leaving the original untouched. */
export function mergeAttributes(event: CloudEvent, attributes: Record<string, string>): CloudEvent {
  if (Object.keys(attributes).length === 0) return event;
  const data = typeof event.data === 'object' && event.data !== null && !(event.data instanceof Uint8Array) ? (event.data as Record<string, unknown>) : {};
  const labels = typeof data.labels === 'object' && data.labels !== null ? (data.labels as Record<string, string>) : {};
  return { ...event, data: { ...data, labels: { ...labels, ...attributes } } };
}

/**
 * Calls the plugins in order, each with its retry policy: retryable codes are
 * retried with exponential backoff up to the attempt limit; the first
 * definitive failure ends the run as failed. Attributes a plugin returns are
 * merged into the event handed to the next plugin.
 */
export async function runPlugins(event: CloudEvent, flow: string, plugins: readonly ActionPlugin[], deps: RunDependencies): Promise<RunResult> {
  const calls: PluginCallRecord[] = [];
  let current = event;
  for (const plugin of plugins) {
    for (let attempt = 1; ; attempt++) {
      if (deps.signal.aborted) return { outcome: 'interrupted', error: `interrupted before ${plugin.name}`, calls, event: current };
      const startedAt = deps.clock.now();
      let failure: PluginError | undefined;
      try {
        const response = await plugin.invoke(current, { flow, attempt, signal: deps.signal });
        current = mergeAttributes(current, response.attributes);
        record({ plugin: plugin.name, attempt, code: 'OK', message: response.message, startedAt, durationMs: deps.clock.now() - startedAt });
      } catch (err) {
        failure = PluginError.from(err);
        record({ plugin: plugin.name, attempt, code: codeName(failure.code), message: failure.message, startedAt, durationMs: deps.clock.now() - startedAt });
      }
      if (!failure) break;
      if (deps.signal.aborted) return { outcome: 'interrupted', error: `${plugin.name}: interrupted: ${failure.message}`, calls, event: current };
      if (!failure.retryable || attempt >= plugin.retry.attempts) {
        const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
        return { outcome: 'failed', error: `${plugin.name}: ${codeName(failure.code)}${tries}: ${failure.message}`, calls, event: current };
      }
      try {
        await deps.clock.sleep(backoffDelay(plugin.retry, attempt, deps.random), deps.signal);
      } catch {
        return { outcome: 'interrupted', error: `interrupted while waiting to retry ${plugin.name}`, calls, event: current };
      }
    }
  }
  return { outcome: 'succeeded', calls, event: current };

  function record(call: PluginCallRecord): void {
    calls.push(call);
    deps.onCall?.(call);
  }
}
