import type { EventSink } from './event-sink.js';
import type { AddedFlows, EventSource, SourceStatus } from './event-source.js';

/**
 * The sources core runs, started and stopped together. Start is all or
 * nothing: when one source cannot start, those started before it are closed.
 */
export class SourceSet {
  constructor(private readonly sources: readonly EventSource[]) {
    const names = new Set<string>();
    for (const { name } of sources) {
      if (names.has(name)) throw new Error(`two sources are named "${name}"`);
      names.add(name);
    }
  }

  /** Starts every source in order; rejects with `describe`'s error for the first that cannot start. */
  async start(sink: EventSink, describe: (source: EventSource, err: unknown) => Error): Promise<void> {
    const started: EventSource[] = [];
    for (const source of this.sources) {
      try {
        await source.start(sink);
      } catch (err) {
        await this.shut(started);
        // A half-started source (e.g. one that failed after binding) releases what it holds too.
        await source.close().catch(() => undefined);
        throw describe(source, err);
      }
      started.push(source);
    }
  }

  /** Every source takes no new events. */
  async stop(): Promise<void> {
    await Promise.all(this.sources.map((source) => source.stop()));
  }

  /** Every source releases what it holds. */
  async close(): Promise<void> {
    await Promise.all(this.sources.map((source) => source.close()));
  }

  /** Tells every source that a reload added `flows` (see {@link EventSource.flowsAdded}). */
  flowsAdded(flows: AddedFlows): void {
    for (const source of this.sources) source.flowsAdded?.(flows);
  }

  /** Every source's status, in start order. */
  statuses(): SourceStatus[] {
    return this.sources.map((source) => source.status());
  }

  private async shut(sources: readonly EventSource[]): Promise<void> {
    await Promise.all(sources.map((source) => source.stop()));
    await Promise.all(sources.map((source) => source.close()));
  }
}
