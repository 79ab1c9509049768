/**
 * How a run ended, told to the source of the event that started it: a source
 * that acknowledges only after acting (a queue) deletes its message on
 * `succeeded`, and decides by `code` whether a failure is worth a redelivery.
 */
export interface RunSettlement {
  readonly flow: string;
  /** `interrupted`: a shutdown cut it short (with a journal it resumes after the restart). */
  readonly outcome: 'succeeded' | 'failed' | 'interrupted';
  /** The gRPC code name (`NOT_FOUND`, `UNAVAILABLE`, ...) of the plugin failure that ended a failed run. */
  readonly code?: string;
  /** Why it failed or was cut short. */
  readonly error?: string;
  /** When its first plugin call started, ms since epoch; absent when no plugin was called. */
  readonly firstCallAt?: number;
}

/** Told once, when a run started for an event ends for good (never on a failure the engine tries again itself). */
export type RunListener = (settlement: RunSettlement) => void;

/**
 * Listeners of the runs in progress, by group key. Shared by the engine a
 * reload replaces and its successor, as the group states are, so a run handed
 * over for its next try still tells its source how it ended. Held in memory
 * only: after a restart nobody is waiting.
 */
export class RunListeners {
  private readonly byKey = new Map<string, { listener: RunListener; firstCallAt?: number }>();

  /** Listens to the run of `key` that was just started. */
  listen(key: string, listener: RunListener): void {
    this.byKey.set(key, { listener });
  }

  /** Notes that the run of `key` called a plugin at `at`; only its first call is kept, over all its tries. */
  called(key: string, at: number): void {
    const entry = this.byKey.get(key);
    if (entry) entry.firstCallAt ??= at;
  }

  /**
   * Forgets the listener of `key` and returns what tells it how its run ended.
   * Taken when the group is freed, before anything is awaited: a new run of
   * the group may start at once and listen in its place.
   */
  take(key: string): ((settlement: Omit<RunSettlement, 'firstCallAt'>) => void) | undefined {
    const entry = this.byKey.get(key);
    if (!entry) return undefined;
    this.byKey.delete(key);
    return (settlement) => entry.listener(entry.firstCallAt === undefined ? settlement : { ...settlement, firstCallAt: entry.firstCallAt });
  }

  /** Runs someone listens to. */
  get size(): number {
    return this.byKey.size;
  }
}
