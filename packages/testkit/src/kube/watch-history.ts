import { expired } from './status.js';
import type { WatchEvent } from './types.js';

interface Recorded<T> {
  resourceVersion: number;
  event: WatchEvent<T>;
}

/**
 * The recent changes of one collection and the watches following it, as the
 * API server's watch cache keeps them: a watch starts with the current
 * objects, or replays what came after its resourceVersion; one older than
 * the history kept gets 410 Expired.
 */
export class WatchHistory<T extends { metadata: { resourceVersion?: string } }> {
  private readonly events: Recorded<T>[] = [];
  private readonly watchers = new Set<(recorded: Recorded<T>) => void>();

  constructor(private readonly size: number) {}

  /** Records a change (with a copy of the object, as it is now) and tells every watch. */
  record(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void {
    const recorded = { resourceVersion: Number(object.metadata.resourceVersion), event: { type, object: structuredClone(object) } };
    this.events.push(recorded);
    // Trimmed in chunks: one splice per event would move the whole history every time.
    if (this.events.length > Math.ceil(this.size * 1.25)) this.events.splice(0, this.events.length - this.size);
    for (const watcher of this.watchers) watcher(recorded);
  }

  /**
   * Starts a watch of the objects `matches` selects; returns its stop.
   * `current` gives the objects a watch without a resourceVersion starts with.
   * @throws StatusError 410 Expired for a resourceVersion older than the history.
   */
  watch(resourceVersion: string | null, latest: number, current: () => Iterable<T>, matches: (object: T) => boolean, send: (event: WatchEvent<T>) => void): () => void {
    const forward = ({ event }: Recorded<T>): void => {
      if (matches(event.object)) send(event);
    };
    if (!resourceVersion || resourceVersion === '0') {
      for (const object of current()) if (matches(object)) send({ type: 'ADDED', object: structuredClone(object) });
    } else {
      const from = Number(resourceVersion);
      const oldest = this.events[0]?.resourceVersion ?? latest + 1;
      if (!Number.isInteger(from) || from < oldest - 1) throw expired(resourceVersion, oldest);
      for (const recorded of this.events) if (recorded.resourceVersion > from) forward(recorded);
    }
    this.watchers.add(forward);
    return () => this.watchers.delete(forward);
  }

  /** Ends every watch. */
  clear(): void {
    this.watchers.clear();
  }
}
