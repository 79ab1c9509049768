import { systemClock, type Clock } from './clock.js';
import { cancelReason } from './cancel-reason.js';
import { PluginError } from './errors.js';
import { completeResult } from './handle-result.js';
import { LazyAbort } from './lazy-abort.js';
import { checkedHandler } from './handler-check.js';
import type { CloudEvent } from './cloud-event.js';
import type { EventHandler, HandleContext, HandleResult } from './handler.js';

/** How {@link invokeHandler} calls the handler. */
export interface InvokeOptions {
  /** The flow the call is made for. Default `test`. */
  flow?: string;
  /** Which call of the plugin in its run this is, 1-based. Default 1. */
  attempt?: number;
  /** The flow's settings for this plugin (the handler's `context.config`). Default none. */
  config?: Readonly<Record<string, string>>;
  /** The call's deadline, from now on `clock`. Default 30 000 ms, core's default plugin timeout. */
  timeoutMs?: number;
  /** Where time is read and the deadline waited for. Default {@link systemClock}. */
  clock?: Clock;
  /** Cancels the call, as core does when it shuts down. */
  signal?: AbortSignal;
}

/** A handler's answer as core reads it: every field filled in. */
export type InvokeResult = Required<HandleResult>;

/** How a call ended: the handler's answer, or the {@link PluginError} core would get. */
export type InvokeOutcome = { readonly ok: true; readonly result: InvokeResult } | { readonly ok: false; readonly error: PluginError };

/**
 * Why the deadline's sleep ends early: the call is over. Never seen (the sleep's rejection is
 * ignored); given so that `abort()` does not build a DOMException, stack trace and all, per call.
 */
const CALL_OVER = new Error('call over');

/**
 * Calls `handler` in-process with the context a served call gets: a deadline `timeoutMs` from now,
 * and a signal that aborts at that deadline with reason PluginError DEADLINE_EXCEEDED, or with
 * CANCELLED when `signal` aborts first. The call ends when the handler settles or its signal
 * aborts, whichever is first, as core stops waiting then. Anything thrown becomes a
 * {@link PluginError} as `serve` sends it (INTERNAL unless it is one). Core runs its built-in
 * plugins through this; tests run a handler through it without core.
 *
 * @example
 * ```ts
 * import { invokeHandler, testEvent } from '@hollowtrees/grpcplugin/testing';
 * const outcome = await invokeHandler({ handle: () => ({ message: 'done' }) }, testEvent(), { timeoutMs: 1_000 });
 * if (outcome.ok) console.log(outcome.result.message);
 * ```
 */
export async function invokeHandler(handler: EventHandler, event: CloudEvent, options: InvokeOptions = {}): Promise<InvokeOutcome> {
  checkedHandler('invokeHandler', handler);
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = new Date(clock.now() + timeoutMs);
  // The handler's signal is made when the handler first reads it: most built-in handlers never do.
  const call = new LazyAbort();
  const aborted = new Promise<never>((_, reject) => call.whenAborted(reject));
  // The reasons a served call's signal gets (a cancel close to the deadline counts as the deadline).
  const abort = (): void => call.abort(cancelReason(deadline.getTime(), clock.now()));
  const context: HandleContext = {
    flow: options.flow ?? 'test',
    attempt: options.attempt ?? 1,
    config: options.config ?? {},
    deadline,
    get signal(): AbortSignal {
      return call.signal;
    },
  };
  // Ends the deadline's sleep once the call is over, so no timer outlives it.
  const over = new AbortController();
  clock.sleep(timeoutMs, over.signal).then(abort, () => {});
  if (options.signal?.aborted) abort();
  else options.signal?.addEventListener('abort', abort, { once: true });
  try {
    return { ok: true, result: completeResult(await Promise.race([handler.handle(event, context), aborted])) };
  } catch (err) {
    return { ok: false, error: PluginError.from(err) };
  } finally {
    over.abort(CALL_OVER);
    options.signal?.removeEventListener('abort', abort);
  }
}
