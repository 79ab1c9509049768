import { readEveryPage, type Backoff, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { isExpiredToken } from './api-errors.js';

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

/** How a {@link WatchedList} (and the caches built on one) reads and retries. */
export interface WatchOptions {
  readonly logger: Logger;
  readonly backoff: Backoff;
  /**
   * A watch that brings nothing, not even a bookmark, for this long is ended and started again
   * from the last version seen: its connection may have been dropped on the way without either
   * end hearing of it, and the cache would go stale, unnoticed, until the kernel gives up on the
   * connection (some 15 minutes). On a quiet collection this costs one watch request per period.
   * Default {@link DEFAULT_QUIET_MS}.
   */
  readonly quietMs?: number;
  /**
   * A watch whose request has not been answered (no headers) this long after it was sent is given up and asked for
   * again: `@kubernetes/client-node`'s Watch has no timeout of its own, and a request whose connection was dropped on
   * the way would otherwise leave the cache stale for good. Default {@link OPEN_QUIET_PERIODS} × `quietMs`.
   */
  readonly openTimeoutMs?: number;
}

/** How many quiet periods a watch may take to open: an API server slow to open one must still get it open. */
export const OPEN_QUIET_PERIODS = 4;

/** 30 s: what a drain waiting on a silently dead watch may lose, against a two-minute notice. */
export const DEFAULT_QUIET_MS = 30_000;

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
    private readonly options: WatchOptions & { readonly what: string },
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
    let resourceVersion = '';
    // A continue token that expired lists again at once; a list that would never end fails, and is tried again after a backoff.
    await readEveryPage<ListedPage<T>>({
      name: `listing the ${this.options.what}s`,
      tokenName: 'continue token',
      read: (token) => this.source.list(token),
      nextToken: (page) => page.continueToken,
      take: (page) => {
        items.push(...page.items);
        // Every page of one list is a snapshot at the first page's version.
        resourceVersion ||= page.resourceVersion;
      },
      expiry: {
        isExpired: isExpiredToken,
        forget: () => {
          items.splice(0);
          resourceVersion = '';
        },
      },
    });
    this.sink.replaceAll(items);
    this.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const waiter of [...this.syncWaiters]) waiter();
    }
  }

  /** One watch, until the server ends it, it fails, or it has been quiet for `quietMs` (then stopped, and resolved). */
  private watchOnce(): Promise<void> {
    const quietMs = this.options.quietMs ?? DEFAULT_QUIET_MS;
    return new Promise<void>((resolve, reject) => {
      let ended = false;
      let handle: { stop(): void } | undefined;
      const end = (err?: unknown): void => {
        if (ended) return;
        ended = true;
        clearTimeout(quiet);
        if (err) reject(err);
        else resolve();
      };
      const onQuiet = (): void => {
        this.options.logger.debug(`the ${this.options.what} watch brought nothing for ${quietMs} ms: watching again from the last version seen`, { resourceVersion: this.resourceVersion });
        end(); // first: the stop reports an abort, which is not a failure here
        handle?.stop();
      };
      // The quiet wait is armed once the watch is open: an API server slow to open watches must not have each one ended
      // before it opens. Until then a longer wait bounds the opening: a request never answered is given up.
      const onNotOpened = (): void => {
        this.options.logger.warn(`the ${this.options.what} watch was not opened within ${openMs} ms: asking for it again from the last version seen`, { resourceVersion: this.resourceVersion });
        end();
      };
      const openMs = this.options.openTimeoutMs ?? OPEN_QUIET_PERIODS * quietMs;
      let quiet: NodeJS.Timeout | undefined = setTimeout(onNotOpened, openMs).unref();
      const listen = (): void => {
        clearTimeout(quiet);
        quiet = setTimeout(onQuiet, quietMs).unref();
      };
      const heard = (event: WatchEvent<T>): void => {
        // A watch ended here may still bring what it had read: the one after it has taken over.
        if (ended) return;
        listen();
        this.apply(event);
      };
      this.source.watch(this.resourceVersion, heard, end).then((opened) => {
        handle = opened;
        // Stopped, or ended, before it was open: the watch after it, if any, is the one stop() must reach.
        if (this.stopped || ended) return opened.stop();
        this.watching = opened;
        listen();
      }, end);
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

  protected constructor(source: ListAndWatch<T>, options: WatchOptions & { readonly what: string }) {
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
