import { Code, PluginError } from './errors.js';
import type { HandleResult } from './handler.js';
import { shown } from './shown-value.js';

const invalid = (what: string): PluginError => new PluginError(Code.Internal, `the handler's result is not a HandleResult: ${what}`);

/**
 * What a handler returned, every field filled in, as either transport and `invokeHandler` send
 * it. A field of the wrong type (a plugin in JavaScript, a result read from JSON) fails the call
 * with INTERNAL naming the field: a `status` of, say, `'failed'` would otherwise count as ok, and
 * core would go on to the next plugin of the run. Anything but an object means `{status: 'ok'}`.
 */
export function completeResult(result: HandleResult | void): Required<HandleResult> {
  if (typeof result !== 'object' || result === null) return { status: 'ok', message: '', attributes: {} };
  const { status, message, attributes } = result;
  if (status != null && status !== 'ok' && status !== 'skipped') throw invalid(`status is ${shown(status)}, expected 'ok' or 'skipped'`);
  if (message != null && typeof message !== 'string') throw invalid(`message is ${shown(message)}, expected a string`);
  if (attributes != null) {
    if (typeof attributes !== 'object' || Array.isArray(attributes)) throw invalid(`attributes is ${shown(attributes)}, expected an object of strings`);
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value !== 'string') throw invalid(`attributes.${key} is ${shown(value)}, expected a string`);
    }
  }
  return { status: status ?? 'ok', message: message ?? '', attributes: attributes ?? {} };
}
