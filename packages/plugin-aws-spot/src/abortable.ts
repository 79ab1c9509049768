import { Code, PluginError } from '@hollowtrees/grpcplugin';

/**
 * Settles like `promise`, or rejects with the signal's reason (the call's
 * DEADLINE_EXCEEDED or CANCELLED) as soon as `signal` aborts: a caller stops
 * waiting for work it shares with others, and the work goes on for them.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The reason of an aborted signal as a PluginError (a foreign reason becomes CANCELLED). */
export function abortReason(signal: AbortSignal): PluginError {
  return signal.reason instanceof PluginError ? signal.reason : new PluginError(Code.Canceled, 'cancelled', { cause: signal.reason });
}

/** A signal that aborts after `ms` with UNAVAILABLE, naming what took too long. */
export function timeoutSignal(ms: number, what: string): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new PluginError(Code.Unavailable, `${what} did not finish within ${ms} ms`)), ms).unref();
  return controller.signal;
}
