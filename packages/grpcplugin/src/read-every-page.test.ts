import { describe, expect, it } from 'vitest';
import { Code, PluginError } from './errors.js';
import { MAX_LISTING_PAGES, MAX_LISTING_RESTARTS, readEveryPage } from './read-every-page.js';

interface Page {
  readonly NextToken?: string;
  readonly n: number;
}

/** A listing read by `read`, keeping each page's `n` in `taken`. */
const listing = (read: (token: string | undefined) => Promise<Page>, taken: number[] = []) => ({
  name: 'EC2 DescribeInstances',
  read,
  nextToken: (page: Page) => page.NextToken,
  take: (page: Page) => void taken.push(page.n),
});

describe('readEveryPage', () => {
  it('reads page after page, each with the token the one before gave, until a page gives none', async () => {
    const asked: (string | undefined)[] = [];
    const taken: number[] = [];
    const pages: Page[] = [{ NextToken: 'a', n: 1 }, { NextToken: 'b', n: 2 }, { NextToken: '', n: 3 }];
    await readEveryPage(listing((token) => (asked.push(token), Promise.resolve(pages[asked.length - 1]!)), taken));
    expect(asked).toEqual([undefined, 'a', 'b']);
    expect(taken).toEqual([1, 2, 3]);
  });

  it('ends as UNAVAILABLE, naming the listing, when a page gives a token an earlier page gave, instead of reading the same pages for ever', async () => {
    let reads = 0;
    const again = (): Promise<Page> => Promise.resolve({ NextToken: reads++ === 0 ? 'a' : reads === 2 ? 'b' : 'a', n: reads });
    const err = await readEveryPage(listing(again)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe(Code.Unavailable);
    expect((err as PluginError).message).toBe('EC2 DescribeInstances: page 3 gave a NextToken an earlier page gave (a): the listing would never end');
    expect(reads).toBe(3);
  });

  it('ends as UNAVAILABLE a listing that hands out a new NextToken at every page, instead of reading (and holding) it for ever', async () => {
    let reads = 0;
    const taken: number[] = [];
    // As an endpoint that never ends would answer: each page a new token.
    const endless = (token: string | undefined): Promise<Page> => Promise.resolve({ NextToken: `t${++reads}`, n: Number(token?.slice(1) ?? 0) });
    const err = await readEveryPage(listing(endless, taken)).catch((e: unknown) => e);
    expect((err as PluginError).code).toBe(Code.Unavailable);
    expect((err as PluginError).message).toBe(
      `EC2 DescribeInstances: page ${MAX_LISTING_PAGES} still gave a NextToken: a listing that long is taken for one that never ends (a broken or hostile endpoint), and not read on`,
    );
    expect(reads).toBe(MAX_LISTING_PAGES);
    expect(taken).toHaveLength(MAX_LISTING_PAGES);
  });

  it('reads a listing of exactly the most pages it reads', async () => {
    let reads = 0;
    await readEveryPage(listing(() => Promise.resolve(++reads < MAX_LISTING_PAGES ? { NextToken: `t${reads}`, n: reads } : { n: reads })));
    expect(reads).toBe(MAX_LISTING_PAGES);
  });

  it('rejects with the error of a failed read', async () => {
    const failed = new Error('throttled');
    await expect(readEveryPage(listing(() => Promise.reject(failed)))).rejects.toBe(failed);
  });

  it('names the token as the API does', async () => {
    const err = await readEveryPage({ ...listing(() => Promise.resolve({ NextToken: 'a', n: 1 })), name: 'Kubernetes pod list', tokenName: 'continue token' }).catch((e: unknown) => e);
    expect((err as PluginError).message).toBe('Kubernetes pod list: page 2 gave a continue token an earlier page gave (a): the listing would never end');
  });

  describe('with expiry (Kubernetes: 410 Gone for a continue token whose list version was compacted)', () => {
    const gone = new Error('410: too old');
    /** A three-page listing whose later pages fail with `gone` the first `expiries` times they are read. */
    const expiring = (expiries: number) => {
      const asked: (string | undefined)[] = [];
      const taken: number[] = [];
      const read = (token: string | undefined): Promise<Page> => {
        asked.push(token);
        if (token !== undefined && expiries-- > 0) return Promise.reject(gone);
        return Promise.resolve(token === undefined ? { NextToken: 'a', n: 1 } : token === 'a' ? { NextToken: 'b', n: 2 } : { n: 3 });
      };
      const expiry = { isExpired: (err: unknown) => err === gone, forget: () => void taken.splice(0) };
      return { asked, taken, paged: { ...listing(read, taken), tokenName: 'continue token', expiry } };
    };

    it('reads the listing again from its first page when a later page\'s token expired, keeping each entry once', async () => {
      const { asked, taken, paged } = expiring(1);
      await readEveryPage(paged);
      expect(asked).toEqual([undefined, 'a', undefined, 'a', 'b']);
      expect(taken).toEqual([1, 2, 3]);
    });

    it(`ends as UNAVAILABLE, naming the listing and the page, once the token expired ${MAX_LISTING_RESTARTS + 1} reads in a row`, async () => {
      const { asked, paged } = expiring(Infinity);
      const err = await readEveryPage(paged).catch((e: unknown) => e);
      expect((err as PluginError).code).toBe(Code.Unavailable);
      expect((err as PluginError).message).toBe(
        `EC2 DescribeInstances: the continue token of page 2 expired before it was used, ${MAX_LISTING_RESTARTS + 1} reads in a row, each restarted from the first page: not read again (410: too old)`,
      );
      expect((err as PluginError).cause).toBe(gone);
      expect(asked).toHaveLength(2 * (MAX_LISTING_RESTARTS + 1));
    });

    it('rejects with its own error a failure of the first page, or one that does not say the token expired', async () => {
      await expect(readEveryPage({ ...expiring(0).paged, read: () => Promise.reject(gone) })).rejects.toBe(gone);
      const other = new Error('500');
      let reads = 0;
      await expect(readEveryPage({ ...expiring(0).paged, read: (token) => (reads++, token ? Promise.reject(other) : Promise.resolve({ NextToken: 'a', n: 1 })) })).rejects.toBe(other);
      expect(reads).toBe(2);
    });
  });
});
