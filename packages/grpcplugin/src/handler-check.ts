import type { EventHandler } from './handler.js';
import { shown } from './shown-value.js';

/**
 * `handler` as an {@link EventHandler}, or a TypeError saying what it is instead. From JavaScript,
 * a bare function or an object without `handle` would otherwise be served as healthy, every call
 * then failing with INTERNAL "this.handler.handle is not a function".
 */
export function checkedHandler(where: string, handler: unknown): EventHandler {
  const handle: unknown = typeof handler === 'object' && handler !== null ? (handler as { handle?: unknown }).handle : undefined;
  if (typeof handle === 'function') return handler as EventHandler;
  const got =
    typeof handler === 'function' ? 'a function (give { handle: yourFunction })' : typeof handler === 'object' && handler !== null ? `an object whose handle is ${shown(handle)}` : shown(handler);
  throw new TypeError(`${where}: handler must be an EventHandler, an object with a handle(event, context) method; got ${got}`);
}
