import { Code, PluginError } from './errors.js';

/**
 * Pages {@link readEveryPage} reads of one listing at most: 1,000,000 entries at 1,000 a page, far
 * beyond any account's instances or a price history window's samples, and far short of what
 * would fill a process's memory.
 */
export const MAX_LISTING_PAGES = 1_000;

/** Times {@link readEveryPage} reads a listing again from its first page after a token expired, at most. */
export const MAX_LISTING_RESTARTS = 3;

/** One paged listing of a cloud API, for {@link readEveryPage}. */
export interface PagedListing<P> {
  /** What is listed, as errors name it: `EC2 DescribeInstances`. */
  readonly name: string;
  /** What the API calls the token that asks for the next page, as errors name it. Default `NextToken` (AWS); Kubernetes: `continue token`. */
  readonly tokenName?: string;
  /** Asks for a page: without a token, the first. */
  read(token: string | undefined): Promise<P>;
  /** The token that asks for the page after `page`; absent or empty when `page` was the last (AWS: `page.NextToken`). */
  nextToken(page: P): string | null | undefined;
  /** Keeps what `page` holds. */
  take(page: P): void;
  /**
   * For an API whose tokens expire (Kubernetes answers 410 Gone to a continue token whose list
   * version etcd has compacted, some five minutes on): a read of a later page that fails so is
   * followed by a read of the whole listing again, from its first page. Absent: it rejects.
   */
  readonly expiry?: {
    /** Whether `err`, from the read of a page after the first, says its token expired. */
    isExpired(err: unknown): boolean;
    /** Drops what {@link PagedListing.take} kept, before the listing is read again. */
    forget(): void;
  };
}

/**
 * Reads every page of a listing, one call at a time (so a long listing stays under the API's rate
 * limits), until a page comes back without a next token. A token the listing already gave (a
 * broken or hostile endpoint handing out a page again), or a listing longer than
 * {@link MAX_LISTING_PAGES} (one handing out new tokens for ever), ends the read with an
 * UNAVAILABLE {@link PluginError} naming the listing: followed, it would loop for ever, holding
 * all it read. With `expiry`, a token that expired restarts the read from the first page, up to
 * {@link MAX_LISTING_RESTARTS} times (then UNAVAILABLE too). Any other failed `read` rejects with its own error.
 */
export async function readEveryPage<P>(listing: PagedListing<P>): Promise<void> {
  for (let restarts = 0; ; restarts++) {
    try {
      return await readPages(listing);
    } catch (err) {
      if (!(err instanceof TokenExpired)) throw err;
      if (restarts === MAX_LISTING_RESTARTS) {
        throw new PluginError(
          Code.Unavailable,
          `${listing.name}: the ${tokenName(listing)} of page ${err.page} expired before it was used, ${MAX_LISTING_RESTARTS + 1} reads in a row, each restarted from the first page: not read again (${messageOf(err.cause)})`,
          { cause: err.cause },
        );
      }
      listing.expiry!.forget();
    }
  }
}

/** A later page's read failed because its token expired. */
class TokenExpired extends Error {
  constructor(
    readonly page: number,
    cause: unknown,
  ) {
    super(`page ${page}: its token expired`, { cause });
  }
}

const tokenName = (listing: PagedListing<unknown>): string => listing.tokenName ?? 'NextToken';
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** One read of the listing from its first page; @throws TokenExpired when a later page's token expired. */
async function readPages<P>(listing: PagedListing<P>): Promise<void> {
  const given = new Set<string>();
  let token: string | undefined;
  do {
    let page: P;
    try {
      page = await listing.read(token);
    } catch (err) {
      if (token !== undefined && listing.expiry?.isExpired(err)) throw new TokenExpired(given.size + 1, err);
      throw err;
    }
    listing.take(page);
    token = listing.nextToken(page) || undefined;
    if (token !== undefined && given.has(token)) throw new PluginError(Code.Unavailable, `${listing.name}: page ${given.size + 1} gave a ${tokenName(listing)} an earlier page gave (${token.slice(0, 60)}): the listing would never end`);
    if (token !== undefined && given.size + 1 >= MAX_LISTING_PAGES) {
      throw new PluginError(Code.Unavailable, `${listing.name}: page ${MAX_LISTING_PAGES} still gave a ${tokenName(listing)}: a listing that long is taken for one that never ends (a broken or hostile endpoint), and not read on`);
    }
    if (token !== undefined) given.add(token);
  } while (token !== undefined);
}
