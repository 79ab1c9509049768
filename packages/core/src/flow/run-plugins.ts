import { codeName, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin/without-grpc';
import type { Clock } from '@hollowtrees/grpcplugin';
import type { ActionPlugin } from '../plugins/action-plugin.js';
import { backoffDelay } from './retry-policy.js';

/** One step of a flow: the plugin and the settings the flow gives it on every call. */
export interface PluginStep {
  plugin: ActionPlugin;
  config: Readonly<Record<string, string>>;
}

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

/**
 * How a run ended: `retrying` when it failed on a retryable code and waits for
 * its next try, `interrupted` when a shutdown cut it short.
 */
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/** Every {@link RunOutcome}: the metrics' series and the engine's label objects are made for each. */
export const RUN_OUTCOMES = ['succeeded', 'failed', 'retrying', 'interrupted'] as const;

/** How one pass over the plugins ended. */
export interface RunResult {
  outcome: 'succeeded' | 'failed' | 'interrupted';
  /** Why it failed, naming the plugin. */
  error?: string;
  /** The failure was a retryable code on every attempt: a later try of the run may succeed. */
  retryable?: boolean;
  /** The gRPC code name of the plugin failure that ended a failed run. */
  code?: string;
  calls: PluginCallRecord[];
  /** Attributes the plugins returned, merged (later values win). */
  attributes: Record<string, string>;
  /** Index among the plugins passed in of the one that failed or was cut short; their count on success. */
  reached: number;
  /** Attributes a plugin returned that name one of the event's own labels, and were ignored. */
  ignored: string[];
}

/** Where a run starts. */
export interface RunStart {
  /** The event as its source made it. */
  event: CloudEvent;
  /** Attributes returned by plugins of an earlier try. */
  attributes: Record<string, string>;
}

export interface RunDependencies {
  clock: Clock;
  random: () => number;
  /** Aborts the run: the call in flight is cancelled and the run ends interrupted. */
  signal: AbortSignal;
  /** Awaited before each plugin call (retries included), to abort `signal` if the run may no longer act. */
  beforeCall?: () => Promise<void>;
  onCall?: (record: PluginCallRecord) => void;
  /**
   * Awaited when a plugin succeeded and another follows, with how many of the steps passed in the run
   * has passed and the attributes so far: the run state records it before the next plugin acts.
   */
  afterStep?: (passed: number, attributes: Record<string, string>) => Promise<void>;
}

function labelsOf(event: CloudEvent): { data: Record<string, unknown>; labels: Record<string, string> } {
  const data = typeof event.data === 'object' && event.data !== null && !(event.data instanceof Uint8Array) ? (event.data as Record<string, unknown>) : {};
  const labels = typeof data.labels === 'object' && data.labels !== null ? (data.labels as Record<string, string>) : {};
  return { data, labels };
}

/** Whether `record` has no keys; most runs' plugins return no attributes, and asking costs them no array. */
function isEmpty(record: Record<string, string>): boolean {
  for (const _ in record) return false;
  return true;
}

/**
 * Returns the event with `attributes` added to `data.labels`, leaving the
 * original untouched. The event's own labels are protected: a plugin can add
 * labels for the plugins after it, never change what the source said (a
 * plugin must not redirect the next one to another instance).
 */
export function mergeAttributes(event: CloudEvent, attributes: Record<string, string>): CloudEvent {
  if (isEmpty(attributes)) return event;
  const { data, labels } = labelsOf(event);
  const added = Object.entries(attributes).filter(([key]) => !Object.hasOwn(labels, key));
  if (added.length === 0) return event;
  return { ...event, data: { ...data, labels: { ...labels, ...Object.fromEntries(added) } } };
}

/**
 * A plugin error's message as logs and the status API show it. grpc-js ends the
 * details of an UNAVAILABLE with `Resolution note: ` and nothing after it when
 * name resolution had nothing to say; that dangling label is dropped.
 */
function failureText(message: string): string {
  return message.replace(/\s*Resolution note:\s*$/, '');
}

/**
 * Calls the plugins in order, each with its retry policy: retryable codes are
 * retried with exponential backoff up to the attempt limit; the first
 * definitive failure ends the run as failed. Attributes a plugin returns are
 * merged into the event handed to the next plugin.
 */
export async function runPlugins(start: RunStart, flow: string, steps: readonly PluginStep[], deps: RunDependencies): Promise<RunResult> {
  const calls: PluginCallRecord[] = [];
  const own = labelsOf(start.event).labels;
  let attributes = start.attributes;
  let current = mergeAttributes(start.event, attributes);
  // Made when a plugin returns attributes: most runs' plugins return none.
  let ignored: Set<string> | undefined;
  const end = (reached: number, outcome: RunResult['outcome'], error?: string, failure?: PluginError): RunResult => {
    const result: RunResult = { outcome, calls, attributes, reached, ignored: ignored ? [...ignored] : [] };
    if (error !== undefined) result.error = error;
    if (failure?.retryable) result.retryable = true;
    if (failure) result.code = codeName(failure.code);
    return result;
  };
  for (let index = 0; index < steps.length; index++) {
    const { plugin, config } = steps[index]!;
    for (let attempt = 1; ; attempt++) {
      if (deps.beforeCall) await deps.beforeCall();
      if (deps.signal.aborted) return end(index, 'interrupted', `interrupted before ${plugin.name}`);
      const startedAt = deps.clock.now();
      let failure: PluginError | undefined;
      let reason = '';
      try {
        const response = await plugin.invoke(current, { flow, attempt, config, signal: deps.signal });
        if (!isEmpty(response.attributes)) {
          attributes = { ...attributes, ...response.attributes };
          for (const key of Object.keys(response.attributes)) if (Object.hasOwn(own, key)) (ignored ??= new Set()).add(key);
          current = mergeAttributes(start.event, attributes);
        }
        record({ plugin: plugin.name, attempt, code: 'OK', message: response.message, startedAt, durationMs: deps.clock.now() - startedAt });
      } catch (err) {
        failure = PluginError.from(err);
        reason = failureText(failure.message);
        record({ plugin: plugin.name, attempt, code: codeName(failure.code), message: reason, startedAt, durationMs: deps.clock.now() - startedAt });
      }
      if (!failure) break;
      if (deps.signal.aborted) return end(index, 'interrupted', `${plugin.name}: interrupted: ${reason}`);
      if (!failure.retryable || attempt >= plugin.retry.attempts) {
        const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
        return end(index, 'failed', `${plugin.name}: ${codeName(failure.code)}${tries}: ${reason}`, failure);
      }
      try {
        await deps.clock.sleep(backoffDelay(plugin.retry, attempt, deps.random), deps.signal);
      } catch {
        return end(index, 'interrupted', `interrupted while waiting to retry ${plugin.name}`);
      }
    }
    if (index + 1 < steps.length) await deps.afterStep?.(index + 1, attributes);
  }
  return end(steps.length, 'succeeded');

  function record(call: PluginCallRecord): void {
    calls.push(call);
    deps.onCall?.(call);
  }
}
