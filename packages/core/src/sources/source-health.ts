import type { SourceState, SourceStatus } from './event-source.js';

/**
 * What every source counts of itself for its {@link SourceStatus}: when it last received events,
 * its failures, and the latest of them. One place builds the status, so every source shows the
 * same fields the same way in `/api/v1/status`.
 */
export class SourceHealth {
  /** @param wallAhead How far the wall clock is ahead of the clock the source's times are on (`wallAheadOf`): the status shows them on the wall clock. */
  constructor(private readonly wallAhead: () => number = () => 0) {}

  private lastReceiveAt: number | undefined;
  private errors = 0;
  private lastError: SourceStatus['lastError'];

  /** The source received events (a request, a batch of messages, a price history) at `at` (ms since the epoch). */
  received(at: number): void {
    this.lastReceiveAt = at;
  }

  /** The source failed at `at`: counted, and kept as its latest failure. */
  failed(at: number, message: string): void {
    this.errors++;
    this.lastError = { at, message };
  }

  /** The status of a source with these name, kind, state and requests or messages in flight; its times on the wall clock. */
  status(name: string, kind: string, state: SourceState, inFlight: number): SourceStatus {
    const ahead = this.wallAhead();
    return {
      name,
      kind,
      state,
      inFlight,
      errors: this.errors,
      ...(this.lastReceiveAt === undefined ? {} : { lastReceiveAt: this.lastReceiveAt + ahead }),
      ...(this.lastError ? { lastError: { ...this.lastError, at: this.lastError.at + ahead } } : {}),
    };
  }
}
