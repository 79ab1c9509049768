import { Code, PluginError } from './errors.js';

/**
 * Pages {@link readEveryPage} reads of one listing at most: 1,000,000 entries at 1,000 a page, far
 * beyond any account's instances or a price history window's samples, and far short of what
 * would fill a process's memory.
 */
export const MAX_LISTING_PAGES = 1_000;

/** One paged listing of a cloud API, for {@link readEveryPage}. */
export interface PagedListing<P> {
  /** What is listed, as errors name it: `EC2 DescribeInstances`. */
  readonly name: string;
  /** Asks for a page: without a token, the first. */
  read(token: string | undefined): Promise<P>;
  /** The token that asks for the page after `page`; absent or empty when `page` was the last (AWS: `page.NextToken`). */
  nextToken(page: P): string | null | undefined;
  /** Keeps what `page` holds. */
  take(page: P): void;
}

/**
 * Reads every page of a listing, one call at a time (so a long listing stays under the API's rate
 * limits), until a page comes back without a next token. A token the listing already gave (a
 * broken or hostile endpoint handing out a page again), or a listing longer than
 * {@link MAX_LISTING_PAGES} (one handing out new tokens for ever), ends the read with an
 * UNAVAILABLE {@link PluginError} naming the listing: followed, it would loop for ever, holding
 * all it read. A failed `read` rejects with its own error.
 */
export async function readEveryPage<P>(listing: PagedListing<P>): Promise<void> {
  const given = new Set<string>();
  let token: string | undefined;
  do {
    const page = await listing.read(token);
    listing.take(page);
    token = listing.nextToken(page) || undefined;
    if (token !== undefined && given.has(token)) throw new PluginError(Code.Unavailable, `${listing.name}: page ${given.size + 1} gave a NextToken an earlier page gave (${token.slice(0, 60)}): the listing would never end`);
    if (token !== undefined && given.size + 1 >= MAX_LISTING_PAGES) {
      throw new PluginError(Code.Unavailable, `${listing.name}: page ${MAX_LISTING_PAGES} still gave a NextToken: a listing that long is taken for one that never ends (a broken or hostile endpoint), and not read on`);
    }
    if (token !== undefined) given.add(token);
  } while (token !== undefined);
}
