import type { PluginLogger } from './plugin-logger.js';

/**
 * What a call cut at its own longest wait still takes to answer (its last API calls, its reply):
 * added to that wait by {@link shutdownTimeoutAfter}.
 */
const ANSWER_MS = 10_000;

/**
 * A `shutdownTimeoutMs` that lets a call running at its longest (`longestCallMs`: a drain's
 * `--max-drain-ms`, a pool call's wait for its replacements) finish and answer, rather than be cut
 * at a rolling update and retried on the new process, an attempt of core's spent.
 */
export function shutdownTimeoutAfter(longestCallMs: number): number {
  return longestCallMs + ANSWER_MS;
}

/**
 * A graceful stop on SIGTERM and SIGINT that also closes what the plugin holds and logs both ends:
 * give it as `serve`'s `handleSignals`.
 */
export interface SignalStop {
  /** Closes what the plugin holds (SDK clients, watches, connections) once the calls in flight have answered and the server has stopped. If it throws or rejects, that is logged at error and the process's exit code is 1. */
  afterClose?: () => unknown;
  /** What the calls in flight are, in the `stopping` log line: `drains` says "drains in flight go on". Default `calls`. */
  inFlight?: string;
}

/**
 * Installs the listeners of `handleSignals`: the first SIGTERM or SIGINT calls `close()`; with a
 * {@link SignalStop}, it logs `stopping` (once `close()` has begun: a call after that line goes elsewhere)
 * with the shutdown timeout, then runs `afterClose` and logs `stopped`. Answers what removes the listeners.
 */
export function stopOnSignals(close: () => Promise<void>, stop: SignalStop | undefined, log: { logger: PluginLogger; shutdownTimeoutMs: number }): () => void {
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    const closed = close();
    if (!stop) return;
    log.logger.info(`stopping: new calls go elsewhere, ${stop.inFlight ?? 'calls'} in flight go on`, { shutdown_timeout_ms: log.shutdownTimeoutMs });
    // A failure closing the plugin's own resources is said and makes the exit code 1, not an unhandled rejection's stack trace.
    void closed
      .then(() => stop.afterClose?.())
      .then(
        () => log.logger.info('stopped'),
        (err: unknown) => {
          process.exitCode = 1;
          log.logger.error('stopped, but closing what the plugin holds failed', { error: err instanceof Error ? err.message : String(err) });
        },
      );
  };
  process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
  return () => void process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
}
