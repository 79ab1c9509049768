/**
 * Test helpers for plugin authors, `@hollowtrees/grpcplugin/testing`: run a handler without core
 * or gRPC, on a clock the test moves.
 *
 * @example
 * ```ts
 * import { Code, PluginError, type EventHandler } from '@hollowtrees/grpcplugin';
 * import { invokeHandler, manualClock, testEvent } from '@hollowtrees/grpcplugin/testing';
 *
 * const handler: EventHandler = {
 *   handle: (event, { signal }) =>
 *     new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
 * };
 * const clock = manualClock();
 * const call = invokeHandler(handler, testEvent({ labels: { instance_id: 'i-0abc' } }), { timeoutMs: 5_000, clock });
 * clock.advance(5_000);
 * const outcome = await call;
 * if (!outcome.ok && outcome.error.code === Code.DeadlineExceeded) console.log('cut off at the deadline');
 * ```
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { CloudEvent, EventData } from './cloud-event.js';
import type { LogFields, PluginLogger } from './plugin-logger.js';

export { invokeHandler, type InvokeOptions, type InvokeOutcome, type InvokeResult } from './invoke.js';
export { jumpableClock, type JumpableClock } from './jumpable-clock.js';
export { manualClock, type ManualClock } from './manual-clock.js';
export { serveUnaryOnly, type UnaryOnlyPlugin } from './unary-only-plugin.js';

/** What {@link testEvent} takes: any CloudEvent attribute, and the labels of `data`. */
export interface TestEventInit extends Partial<Omit<CloudEvent<EventData>, 'data'>> {
  /** `data.labels`. Default `{}`. */
  labels?: Record<string, string>;
  /** Fields of `data` beside `labels`. */
  fields?: Record<string, unknown>;
}

/**
 * A valid Hollowtrees event, as core would send it: CloudEvents 1.0 with a fresh `id`, `source`
 * `urn:hollowtrees:test`, `type` `prometheus.server.alert.SpotInstanceTerminating`, `time` now,
 * JSON `data` of `{labels, ...fields}`; any attribute given in `init` wins.
 */
export function testEvent(init: TestEventInit = {}): CloudEvent<EventData> {
  const { labels = {}, fields = {}, ...attributes } = init;
  return {
    id: randomUUID(),
    source: 'urn:hollowtrees:test',
    specversion: '1.0',
    type: 'prometheus.server.alert.SpotInstanceTerminating',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    ...attributes,
    data: { ...fields, labels },
  };
}

/** One line a {@link recordingLogger} was told. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields | undefined;
}

/**
 * A {@link PluginLogger} that keeps every line it is told, in order, for a test to check what an
 * operator would read (`expect(logger.lines).toContainEqual({ level: 'warn', message: ..., fields: ... })`).
 */
export function recordingLogger(): PluginLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

