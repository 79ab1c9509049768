/**
 * gRPC status codes, with the same numbers as on the wire. Branch on
 * {@link PluginError.code}, never on message text.
 */
export enum Code {
  /** Success; not a failure code: a PluginError with it answers INTERNAL. */
  Ok = 0,
  /** The call was cancelled (a handler's `signal.reason` when core cancels). Fails the run. */
  Canceled = 1,
  /** An error of an unknown kind. Fails the run. */
  Unknown = 2,
  /** The event cannot be acted on (a label missing or malformed): calling again would not help. Fails the run. */
  InvalidArgument = 3,
  /** The deadline passed (a handler's `signal.reason` at its deadline). Retried by core. */
  DeadlineExceeded = 4,
  /** What the event names does not exist. Fails the run; return `{ status: 'skipped' }` if that means nothing is left to do. */
  NotFound = 5,
  /** What the plugin would create exists already. Fails the run. */
  AlreadyExists = 6,
  /** The plugin may not do it (its credentials lack a permission). Fails the run. */
  PermissionDenied = 7,
  /** Throttled, or out of a quota that refills. Retried by core. */
  ResourceExhausted = 8,
  /** The system is not in a state that allows it, and will not be by retrying at once. Fails the run. */
  FailedPrecondition = 9,
  /** A conflict (a concurrent change, an optimistic-lock failure): worth trying again. Retried by core. */
  Aborted = 10,
  /** A value out of its range. Fails the run. */
  OutOfRange = 11,
  /** Not implemented by this plugin. Fails the run. */
  Unimplemented = 12,
  /** A bug: what anything thrown that is no PluginError becomes. Fails the run. */
  Internal = 13,
  /** A dependency is down or unreachable for now (a cloud API, a webhook). Retried by core. */
  Unavailable = 14,
  /** Data lost or corrupted. Fails the run. */
  DataLoss = 15,
  /** The plugin's own credentials were refused. Fails the run. */
  Unauthenticated = 16,
}

const RETRYABLE: ReadonlySet<Code> = new Set([
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.Aborted,
]);

/** True for the codes core retries: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED. */
export function isRetryable(code: Code): boolean {
  return RETRYABLE.has(code);
}

// Spelled as gRPC's status enum spells them; kept here so that errors load no gRPC runtime (a CLI's start-up).
const CODE_NAMES: readonly string[] = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** The name of a code as gRPC spells it, e.g. `UNAVAILABLE` or `CANCELLED`; `CODE_<n>` for a number gRPC does not define. */
export function codeName(code: Code): string {
  return (Number.isInteger(code) ? CODE_NAMES[code] : undefined) ?? `CODE_${code}`;
}

/**
 * The one error type that crosses the plugin boundary. Thrown by a handler, it
 * reaches core as the gRPC status `code` with `message`; thrown by
 * {@link PluginClient}, it carries the status the plugin answered with.
 * Core retries UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED
 * ({@link PluginError.retryable}); any other code fails the run at once.
 *
 * @example
 * ```ts
 * import { Code, PluginError } from '@hollowtrees/grpcplugin';
 * const webhookStatus: number = 503;
 * // Retried by core: the webhook may be back in a moment.
 * if (webhookStatus >= 500) throw new PluginError(Code.Unavailable, `webhook answered ${webhookStatus}`);
 * // Not retried: the flow's config is wrong, calling again cannot help.
 * if (webhookStatus === 404) throw new PluginError(Code.FailedPrecondition, 'webhook URL not found');
 * ```
 */
export class PluginError extends Error {
  override readonly name = 'PluginError';
  constructor(
    /** The gRPC status code. */
    readonly code: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /**
   * True for a PluginError of any copy of this SDK, not only of this one: a plugin (or a
   * package it uses) may load a second copy, whose errors must keep their code when they
   * reach this copy's `serve` or `PluginError.from`. Anything named `PluginError` with a
   * numeric `code` and a string `message` counts, whatever its realm (a code that is no gRPC
   * failure code is `from`'s to explain, not a reason to forget it was a PluginError). A
   * subclass keeps the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== PluginError) return Function.prototype[Symbol.hasInstance].call(this, value);
    if (typeof value !== 'object' || value === null) return false;
    const { name, code, message } = value as { name?: unknown; code?: unknown; message?: unknown };
    return name === 'PluginError' && typeof code === 'number' && typeof message === 'string';
  }

  /** Whether core retries a call that failed with this error. */
  get retryable(): boolean {
    return isRetryable(this.code);
  }

  /**
   * Wraps anything thrown: a PluginError stays as it is (one of another SDK copy keeps its code); anything else becomes
   * INTERNAL with its message, so an unexpected failure is never silent. So does a PluginError whose code is no gRPC
   * failure code (OK, a fraction, or a number outside 1 to 16), its message saying which code it had.
   */
  static from(err: unknown): PluginError {
    if (err instanceof PluginError) {
      // Sent on, OK would break the contract on both transports (a unary client reads "No message received", UNIMPLEMENTED;
      // a stream's CallStatus is never OK), and a code gRPC does not define arrives elsewhere as UNKNOWN, the message lost.
      if (!(Number.isInteger(err.code) && err.code >= Code.Canceled && err.code <= Code.Unauthenticated)) {
        return new PluginError(Code.Internal, `a PluginError with code ${err.code} (${codeName(err.code)}), which is no gRPC failure code (1 to 16): ${err.message}`, { cause: err });
      }
      // One of another SDK copy becomes one of this copy, with its code, message and stack.
      if (Object.prototype.isPrototypeOf.call(PluginError.prototype, err)) return err;
      return Object.assign(new PluginError(err.code, err.message, { cause: err }), { stack: err.stack });
    }
    if (err instanceof Error) return new PluginError(Code.Internal, err.message || err.name, { cause: err });
    return new PluginError(Code.Internal, String(err));
  }
}

/**
 * The failure a plugin answered with `code` and `message`. A code that is no gRPC failure code (OK, or outside 1 to 16:
 * a plugin written without the SDK) becomes UNKNOWN, as gRPC names a status of an error space it does not know, its
 * message saying which code came: kept, it failed a run as "OK", or under a metric label of its own for every code a
 * broken plugin makes up.
 */
export function answeredFailure(code: number, message: string): PluginError {
  if (Number.isInteger(code) && code >= Code.Canceled && code <= Code.Unauthenticated) return new PluginError(code as Code, message);
  return new PluginError(Code.Unknown, `the plugin answered with status code ${code} (${codeName(code as Code)}), which is no gRPC failure code (1 to 16): ${message}`);
}
