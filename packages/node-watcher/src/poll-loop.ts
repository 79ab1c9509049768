import type { Backoff, Clock } from '@hollowtrees/grpcplugin';
import type { MonitorSink } from './monitor.js';
import type { Notice } from './notice.js';

/**
 * Longest wait after failures, however far a backoff grew (metadata reads here and in the identity
 * read; sends to core by the default backoff): a metadata service is local and cheap to ask again,
 * and an Azure Preempt or a Google Cloud preemption gives 30 s, which a wait grown to 30 s could
 * miss whole.
 */
export const MAX_RETRY_WAIT_MS = 5_000;

/** Options of {@link pollLoop}. */
export interface PollLoopOptions {
  /** One round; an error is reported and the next round waits the backoff instead of the interval. */
  round(signal: AbortSignal): Promise<void>;
  onError(err: Error): void;
  /** Between rounds that succeeded. 0 for hanging GETs, which wait on the server. */
  intervalMs: number;
  /** After failed rounds in a row (1 for the first), up to {@link MAX_RETRY_WAIT_MS}. */
  backoff: Backoff;
  clock: Clock;
  signal: AbortSignal;
}

/** Runs rounds until `signal` aborts: every metadata poller's loop, so none of them stops on an error. */
export async function pollLoop(options: PollLoopOptions): Promise<void> {
  const { signal, clock } = options;
  let failures = 0;
  while (!signal.aborted) {
    try {
      await options.round(signal);
      failures = 0;
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      options.onError(err instanceof Error ? err : new Error(String(err)));
    }
    const wait = failures > 0 ? Math.min(options.backoff(failures), MAX_RETRY_WAIT_MS) : options.intervalMs;
    if (wait > 0) await clock.sleep(wait, signal).catch(() => undefined);
  }
}

/** What a monitor polling one check (Azure) needs to watch: that check, and its loop's timing. */
export interface PollingWatch {
  /** The part of the metadata service the check reads, as {@link MonitorSink.notices} names it. */
  part: string;
  check(signal: AbortSignal): Promise<Notice[]>;
  sink: MonitorSink;
  intervalMs: number;
  backoff: Backoff;
  clock: Clock;
  signal: AbortSignal;
}

/** Checks every `intervalMs` until `signal` aborts: one poll counted per check, notices and errors to the sink. */
export function watchByPolling(options: PollingWatch): Promise<void> {
  const { part, check, sink, ...timing } = options;
  return pollLoop({
    round: async (s) => {
      sink.polled();
      sink.notices(part, await check(s));
    },
    onError: (err) => sink.metadataError(err),
    ...timing,
  });
}
