import { recordingLogger, type LogLine } from '@hollowtrees/grpcplugin/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WatchedList, type ListAndWatch, type ListedPage, type ListSink, type WatchEvent } from './watched-list.js';

// The list-and-watch loop on its own, against a scripted source: pod-cache.test.ts runs it over HTTP
// against the stand-in API server; here each step (which version a watch resumes from, when it lists
// again) is checked exactly.

interface Item {
  name: string;
  metadata?: { resourceVersion?: string };
}

const item = (name: string, resourceVersion: string): Item => ({ name, metadata: { resourceVersion } });

/** A source whose lists answer the given pages, and whose watches the test drives. */
class ScriptedSource implements ListAndWatch<Item> {
  readonly calls: string[] = [];
  /** Each list's pages, by continue token ('' for the first page). */
  pages = new Map<string, ListedPage<Item>>([['', { items: [item('a', '7')], resourceVersion: '10', continueToken: undefined }]]);
  listError: unknown;
  private current: { onEvent: (event: WatchEvent<Item>) => void; done: (err?: unknown) => void; stopped: boolean } | undefined;
  private connected: (() => void) | undefined;
  /** Set to hold the next watch's connection until {@link connect}. */
  holdConnection = false;

  async list(continueToken: string | undefined): Promise<ListedPage<Item>> {
    this.calls.push(`list ${continueToken ?? ''}`.trim());
    if (this.listError) {
      const err = this.listError;
      this.listError = undefined;
      throw err;
    }
    return this.pages.get(continueToken ?? '')!;
  }

  async watch(resourceVersion: string, onEvent: (event: WatchEvent<Item>) => void, done: (err?: unknown) => void): Promise<{ stop(): void }> {
    this.calls.push(`watch ${resourceVersion}`);
    const watch = { onEvent, done, stopped: false };
    this.current = watch;
    if (this.holdConnection) await new Promise<void>((resolve) => (this.connected = resolve));
    return { stop: () => void (watch.stopped = true) };
  }

  connect(): void {
    this.connected?.();
  }
  send(event: WatchEvent<Item>): void {
    this.current!.onEvent(event);
  }
  /** Ends the watch, as the server does (with `err`, as a failed connection does). */
  end(err?: unknown): void {
    this.current!.done(err);
  }
  get watchStopped(): boolean {
    return this.current?.stopped ?? false;
  }
}

class ArraySink implements ListSink<Item> {
  readonly items = new Map<string, Item>();
  replaceAll(items: readonly Item[]): void {
    this.items.clear();
    for (const i of items) this.items.set(i.name, i);
  }
  put(i: Item): void {
    this.items.set(i.name, i);
  }
  remove(i: Item): void {
    this.items.delete(i.name);
  }
  get names(): string[] {
    return [...this.items.keys()].sort();
  }
}

const lists: WatchedList<Item>[] = [];
afterEach(() => {
  for (const l of lists.splice(0)) l.stop();
});

function watched(): { source: ScriptedSource; sink: ArraySink; list: WatchedList<Item>; warnings: LogLine[] } {
  const source = new ScriptedSource();
  const sink = new ArraySink();
  const logger = recordingLogger();
  const list = new WatchedList(source, sink, { what: 'pod', logger, backoff: () => 5 });
  lists.push(list);
  return { source, sink, list, warnings: logger.lines };
}

/** Resolves once `check` holds (polling), or fails after 2 s. */
async function until(check: () => boolean): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > 2_000) throw new Error('condition not met in 2 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What `p` resolves to within 50 ms, or 'pending'. */
const within50ms = <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 50))]);

describe('WatchedList', () => {
  it('lists every page, then watches from the first page\'s version; later whenSynced calls answer at once', async () => {
    const { source, sink, list } = watched();
    source.pages = new Map([
      ['', { items: [item('a', '3')], resourceVersion: '10', continueToken: 'p2' }],
      ['p2', { items: [item('b', '4')], resourceVersion: '11', continueToken: undefined }],
    ]);
    expect(list.isSynced).toBe(false);
    expect(await list.whenSynced(2_000)).toBe(true);
    expect(list.isSynced).toBe(true);
    expect(sink.names).toEqual(['a', 'b']);
    await until(() => source.calls.length === 3);
    expect(source.calls).toEqual(['list', 'list p2', 'watch 10']);
    expect(await within50ms(list.whenSynced(60_000))).toBe(true);
  });

  it('whenSynced answers false when the first list has not landed in time', async () => {
    const { source, list } = watched();
    source.listError = Object.assign(new Error('unavailable'), { statusCode: 503 });
    source.pages.clear();
    expect(await list.whenSynced(30)).toBe(false);
  });

  it('applies ADDED, MODIFIED and DELETED; a BOOKMARK only moves the version; a watch that ends resumes from the last version without listing', async () => {
    const { source, sink, list } = watched();
    await list.whenSynced(2_000);
    await until(() => source.calls.includes('watch 10'));
    source.send({ type: 'ADDED', object: item('b', '11') });
    source.send({ type: 'MODIFIED', object: { ...item('a', '12') } });
    source.send({ type: 'DELETED', object: item('b', '13') });
    source.send({ type: 'BOOKMARK', object: { name: 'bookmark', metadata: { resourceVersion: '14' } } });
    expect(sink.names).toEqual(['a']);
    expect(sink.items.get('a')?.metadata?.resourceVersion).toBe('12');

    source.end();
    await until(() => source.calls.length === 3);
    expect(source.calls).toEqual(['list', 'watch 10', 'watch 14']);
  });

  it('a watch ERROR that is not 410 keeps the version; 410 Gone lists again, and so does a watch refused with 410', async () => {
    const { source, sink, list, warnings } = watched();
    await list.whenSynced(2_000);
    await until(() => source.calls.includes('watch 10'));
    source.send({ type: 'ERROR', object: { code: 500, message: 'internal' } });
    source.end();
    await until(() => source.calls.length === 3);
    expect(source.calls.at(-1)).toBe('watch 10');

    source.pages.set('', { items: [item('c', '20')], resourceVersion: '21', continueToken: undefined });
    source.send({ type: 'ERROR', object: { code: 410, message: 'too old resource version' } });
    source.end();
    await until(() => source.calls.length === 5);
    expect(source.calls.slice(3)).toEqual(['list', 'watch 21']);
    expect(sink.names).toEqual(['c']);

    // The watch request itself answered 410: the loop logs, waits its backoff, and lists again.
    source.end(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await until(() => source.calls.length === 7);
    expect(source.calls.slice(5)).toEqual(['list', 'watch 21']);
    expect(warnings).toEqual([
      {
        level: 'warn',
        message: 'the pod cache lost its watch or list: trying again (drains meanwhile use what it has, or ask the API server)',
        fields: { err: expect.objectContaining({ statusCode: 410 }), attempt: 1 },
      },
    ]);
  });

  it('counts failures in a row for the backoff, and starts counting again after a watch that worked', async () => {
    const { source, list, warnings } = watched();
    await list.whenSynced(2_000);
    await until(() => source.calls.length === 2);
    source.end(new Error('reset'));
    await until(() => source.calls.length === 3);
    source.end(new Error('reset'));
    await until(() => source.calls.length === 4);
    // A watch the server ended cleanly worked: the next failure is the first again.
    source.end();
    await until(() => source.calls.length === 5);
    source.end(new Error('reset'));
    await until(() => source.calls.length === 6);
    expect(warnings.map((w) => w.fields?.attempt)).toEqual([1, 2, 1]);
    // A failed watch keeps its version: no list after the first.
    expect(source.calls.filter((c) => c === 'list')).toHaveLength(1);
  });

  it('stop() stops the watch, and nothing is listed or watched after it, even when the watch fails as it stops', async () => {
    const { source, list, warnings } = watched();
    await list.whenSynced(2_000);
    await until(() => source.calls.length === 2);
    list.stop();
    expect(source.watchStopped).toBe(true);
    source.end(new Error('aborted'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(source.calls).toEqual(['list', 'watch 10']);
    expect(warnings).toEqual([]);
  });

  it('a watch still connecting when stop() is called is stopped once it connects', async () => {
    const { source, list } = watched();
    source.holdConnection = true;
    await list.whenSynced(2_000);
    await until(() => source.calls.length === 2);
    list.stop();
    expect(source.watchStopped).toBe(false);
    source.connect();
    await until(() => source.watchStopped);
    source.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(source.calls).toEqual(['list', 'watch 10']);
  });
});
