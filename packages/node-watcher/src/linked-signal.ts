/** A signal that aborts when any of its parents does, detached from them by {@link LinkedSignal.release}. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  abort(reason: unknown): void;
  /** Detaches from the parents: call it once the signal is no longer needed. */
  release(): void;
}

/**
 * Links a short-lived signal (one request, one sleep) to long-lived ones (the watcher's stop).
 * Not `AbortSignal.any()`: in Node 20 every signal it makes stays referenced from its parents until
 * they abort, so a watcher polling for weeks would keep one entry per request, and grow until the
 * container's memory limit kills it.
 */
export function linkedSignal(parents: readonly AbortSignal[]): LinkedSignal {
  const controller = new AbortController();
  const onAbort = (event: Event): void => controller.abort((event.target as AbortSignal).reason);
  for (const parent of parents) {
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    abort: (reason) => controller.abort(reason),
    release: () => {
      for (const parent of parents) parent.removeEventListener('abort', onAbort);
    },
  };
}
