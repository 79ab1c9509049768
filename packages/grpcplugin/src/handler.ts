import type { CloudEvent } from './cloud-event.js';
import type { PluginError } from './errors.js';

/** What the handler knows about the call it serves. */
export interface HandleContext {
  /** The flow whose run calls the plugin. */
  readonly flow: string;
  /**
   * 1 for the first call of this plugin in this pass of the run, 2 for the first retry, ...
   * A later try of the whole run (core's `runRetry`) and a run resumed after core restarted
   * start again at 1, so 1 does not mean the plugin never saw this event: act idempotently.
   */
  readonly attempt: number;
  /** When core stops waiting, if it set a deadline (core always does). */
  readonly deadline: Date | undefined;
  /**
   * Aborts at the deadline or when core cancels the call; pass it to I/O. Its
   * `reason` is a {@link PluginError}: DEADLINE_EXCEEDED or CANCELLED.
   */
  readonly signal: AbortSignal;
  /**
   * The calling flow's settings for this plugin (`{plugin: name, config: {...}}`
   * in core's configuration), every value a string; empty when the flow sets
   * none. Lets one plugin act differently per flow, e.g. on one instance or on a pool.
   */
  readonly config: Readonly<Record<string, string>>;
}

/**
 * Outcome of a handled event. Returning nothing means `{ status: 'ok' }`. A result of another
 * shape (a status other than these two, a message or an attribute value that is not a string)
 * fails the call with INTERNAL, naming the field.
 */
export interface HandleResult {
  /** `ok`: the plugin acted; `skipped`: nothing to do, the run goes on. Default `ok`. */
  status?: 'ok' | 'skipped';
  /**
   * A short human-readable summary of what was done. Core keeps it with the run: each call's `message`
   * in the status API (`GET /api/v1/status/runs`); it does not log it (a failure's message it does log).
   */
  message?: string;
  /**
   * Merged by core into `data.labels` of the event handed to the next plugin of
   * the same run, e.g. `replacement_instance_id`. When two plugins return the
   * same attribute the later value wins; an attribute named like one of the
   * event's own labels (`instance_id`, `node`, ...) is ignored, so a plugin can
   * add to what the source said but never change it.
   */
  attributes?: Record<string, string>;
}

/**
 * Implemented by every action plugin, and by core's built-in plugins.
 * Throw a {@link PluginError} to answer with a gRPC code; anything else thrown
 * becomes INTERNAL.
 */
export interface EventHandler {
  /**
   * Acts on one event for one flow's run. Resolve (with nothing, or a {@link HandleResult}) when done;
   * `{ status: 'skipped' }` when there was nothing to do. To fail, throw a {@link PluginError}: with
   * `Code.Unavailable` (the API you call is down), `Code.ResourceExhausted` (throttled), `Code.Aborted`
   * (a conflict worth trying again) or `Code.DeadlineExceeded`, core calls again, up to the plugin's
   * `retry.attempts`, then tries the whole run later; any other code (`Code.InvalidArgument` for an
   * event you cannot act on, `Code.FailedPrecondition`, `Code.PermissionDenied`, ...) fails the run at
   * once. Anything else thrown (a plain `Error`, a string) answers INTERNAL, which is not retried, and is
   * logged by `serve` with its stack. Core may call again for the same event: act idempotently.
   *
   * @param event The CloudEvent; what it is about is in `data.labels`: read it with `labelsOf(event)`.
   * @param context The flow, the attempt, the flow's `config` for this plugin, the deadline and the
   *   `signal` that aborts at it (or when core cancels): pass `signal` to your I/O.
   */
  handle(event: CloudEvent, context: HandleContext): Promise<HandleResult | void> | HandleResult | void;
}
