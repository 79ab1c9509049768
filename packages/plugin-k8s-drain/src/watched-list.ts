import type { Backoff, PluginLogger as Logger } from '@hollowtrees/grpcplugin';

/** One page of a list, with the resourceVersion a watch resumes from. */
export interface ListedPage<T> {
  items: T[];
  resourceVersion: string;
  continueToken: string | undefined;
}

/** A watch event: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, or `ERROR` (whose object is a `Status`). */
export type WatchEvent<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T } | { type: 'ERROR'; object: { code?: number; message?: string } };

/** Where a {@link WatchedList} reads: the pages of a list, and a watch from a resourceVersion. */
export interface ListAndWatch<T> {
  list(continueToken: string | undefined): Promise<ListedPage<T>>;
  /** Follows changes after `resourceVersion` until the server ends it or `stop` is called; `done` is told once. */
  watch(resourceVersion: string, onEvent: (event: WatchEvent<T>) => void, done: (err?: unknown) => void): Promise<{ stop(): void }>;
}

/** What a {@link WatchedList} keeps current. */
export interface ListSink<T> {
  /** Everything a (re)list found: what the sink holds and the list lacks is gone. */
  replaceAll(items: readonly T[]): void;
  put(item: T): void;
  remove(item: T): void;
}

interface Versioned {
  metadata?: { resourceVersion?: string };
}

/**
 * Keeps a {@link ListSink} current with one collection of the API server, as
 * an informer does: one paged list, then one watch from its resourceVersion. A
 * watch that ends is resumed from the last version seen; one answered 410 Gone
 * (that version is too old) lists again; a failure is retried with `backoff`.
 */
export class WatchedList<T extends Versioned> {
  private resourceVersion = '';
  private synced = false;
  private readonly syncWaiters = new Set<() => void>();
  private stopped = false;
  private watching: { stop(): void } | undefined;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly source: ListAndWatch<T>,
    private readonly sink: ListSink<T>,
    private readonly options: { readonly what: string; readonly logger: Logger; readonly backoff: Backoff },
  ) {}

  /** Starts listing and watching, once; later calls do nothing. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Whether the first list has landed. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Starts if needed; resolves true once the first list has landed, false if it has not within `waitMs`. */
  whenSynced(waitMs: number): Promise<boolean> {
    this.start();
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.syncWaiters.delete(done);
        resolve(this.synced);
      };
      const timer = setTimeout(done, waitMs);
      this.syncWaiters.add(done);
    });
  }

  /** Stops watching (a watch still connecting is stopped as soon as it is connected). */
  stop(): void {
    this.stopped = true;
    this.watching?.stop();
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if ((err as { statusCode?: number }).statusCode === 410) this.resourceVersion = '';
        failures++;
        this.options.logger.warn(`the ${this.options.what} cache lost its watch or list: trying again (drains meanwhile use what it has, or ask the API server)`, {
          err,
          attempt: failures,
        });
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          setTimeout(resolve, this.options.backoff(failures)).unref();
        });
      }
    }
  }

  private async relist(): Promise<void> {
    const items: T[] = [];
    let token: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.source.list(token);
      items.push(...page.items);
      // Every page of one list is a snapshot at the first page's version.
      resourceVersion ||= page.resourceVersion;
      token = page.continueToken;
    } while (token);
    this.sink.replaceAll(items);
    this.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const waiter of [...this.syncWaiters]) waiter();
    }
  }

  private watchOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.source
        .watch(this.resourceVersion, (event) => this.apply(event), (err) => (err ? reject(err) : resolve()))
        .then((handle) => {
          this.watching = handle;
          if (this.stopped) handle.stop();
        }, reject);
    });
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      // 410 Gone: the version is too old to resume from; the server ends the watch and the loop lists again.
      if (event.object.code === 410) this.resourceVersion = '';
      return;
    }
    if (event.type === 'DELETED') this.sink.remove(event.object);
    else if (event.type !== 'BOOKMARK') this.sink.put(event.object);
    this.resourceVersion = event.object.metadata?.resourceVersion ?? this.resourceVersion;
  }
}

/**
 * A cache of one collection kept current by a {@link WatchedList}: subclasses
 * index what they keep ({@link ListSink}), this runs the list and the watch.
 */
export abstract class WatchedCache<T extends Versioned> implements ListSink<T> {
  private readonly list: WatchedList<T>;

  protected constructor(source: ListAndWatch<T>, options: { readonly what: string; readonly logger: Logger; readonly backoff: Backoff }) {
    this.list = new WatchedList(source, this, options);
  }

  /** Starts listing and watching, once. */
  start(): void {
    this.list.start();
  }

  /** Whether the first list has landed. */
  get isSynced(): boolean {
    return this.list.isSynced;
  }

  /** Starts if needed; resolves true once the first list has landed, false if it has not within `waitMs`. */
  whenSynced(waitMs: number): Promise<boolean> {
    return this.list.whenSynced(waitMs);
  }

  /** Stops watching. */
  stop(): void {
    this.list.stop();
  }

  abstract replaceAll(items: readonly T[]): void;
  abstract put(item: T): void;
  abstract remove(item: T): void;
}
