/** One page of an AWS listing: what matters here is whether, and with which token, it goes on. */
export interface AwsPage {
  readonly NextToken?: string | undefined;
}

/**
 * Reads every page of an AWS listing, one call at a time: `read(token)` asks for a page (no token:
 * the first), `take(page)` keeps what it holds, until a page comes back without a `NextToken`.
 * A token the listing already gave (a broken or hostile endpoint handing out a page again) ends
 * the read with an error naming `action`: followed, it would loop for ever.
 */
export async function readEveryPage<P extends AwsPage>(action: string, read: (token: string | undefined) => Promise<P>, take: (page: P) => void): Promise<void> {
  const given = new Set<string>();
  let token: string | undefined;
  do {
    const page = await read(token);
    take(page);
    token = page.NextToken || undefined;
    if (token !== undefined && given.has(token)) throw new Error(`${action}: page ${given.size + 1} gave a NextToken an earlier page gave (${token.slice(0, 60)}): the listing would never end`);
    if (token !== undefined) given.add(token);
  } while (token !== undefined);
}
