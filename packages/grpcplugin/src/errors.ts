import { status } from '@grpc/grpc-js';

/**
 * gRPC status codes, with the same numbers as on the wire. Branch on
 * {@link PluginError.code}, never on message text.
 */
export enum Code {
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
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

/** The name of a code as gRPC spells it, e.g. `UNAVAILABLE` or `CANCELLED`; `CODE_<n>` for a number gRPC does not define. */
export function codeName(code: Code): string {
  return status[code] ?? `CODE_${code}`;
}

/**
 * The one error type that crosses the plugin boundary. Thrown by a handler, it
 * reaches core as the gRPC status `code` with `message`; thrown by
 * {@link PluginClient}, it carries the status the plugin answered with.
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

  /** Whether core retries a call that failed with this error. */
  get retryable(): boolean {
    return isRetryable(this.code);
  }

  /**
   * Wraps anything thrown: a PluginError stays as it is; anything else becomes
   * INTERNAL with its message, so an unexpected failure is never silent.
   */
  static from(err: unknown): PluginError {
    if (err instanceof PluginError) return err;
    if (err instanceof Error) return new PluginError(Code.Internal, err.message || err.name, { cause: err });
    return new PluginError(Code.Internal, String(err));
  }
}
