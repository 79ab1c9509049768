/** One page of an AWS listing: what matters here is whether, and with which token, it goes on. */
export interface AwsPage {
  readonly NextToken?: string | undefined;
}

/**
 * Pages read of one listing at most: 1,000,000 entries at 1,000 a page, far beyond any account's
 * instances or a price history window's samples, and far short of what would fill core's memory.
 */
export const MAX_AWS_PAGES = 1_000;

/**
 * Reads every page of an AWS listing, one call at a time: `read(token)` asks for a page (no token:
 * the first), `take(page)` keeps what it holds, until a page comes back without a `NextToken`.
 * A token the listing already gave (a broken or hostile endpoint handing out a page again), or a
 * listing longer than {@link MAX_AWS_PAGES} (one handing out new tokens for ever), ends the read
 * with an error naming `action`: followed, it would loop for ever, holding all it read.
 */
export async function readEveryPage<P extends AwsPage>(action: string, read: (token: string | undefined) => Promise<P>, take: (page: P) => void): Promise<void> {
  const given = new Set<string>();
  let token: string | undefined;
  do {
    const page = await read(token);
    take(page);
    token = page.NextToken || undefined;
    if (token !== undefined && given.has(token)) throw new Error(`${action}: page ${given.size + 1} gave a NextToken an earlier page gave (${token.slice(0, 60)}): the listing would never end`);
    if (token !== undefined && given.size + 1 >= MAX_AWS_PAGES) throw new Error(`${action}: page ${MAX_AWS_PAGES} still gave a NextToken: a listing that long is taken for one that never ends (a broken or hostile endpoint), and not read on`);
    if (token !== undefined) given.add(token);
  } while (token !== undefined);
}
