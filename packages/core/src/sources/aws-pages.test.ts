import { describe, expect, it } from 'vitest';
import { MAX_AWS_PAGES, readEveryPage } from './aws-pages.js';

describe('readEveryPage', () => {
  it('ends with an error naming the call a listing that hands out a new NextToken at every page, instead of reading (and holding) it for ever', async () => {
    let reads = 0;
    const taken: number[] = [];
    // As an endpoint that never ends would answer: each page a new token.
    const endless = (token: string | undefined): Promise<{ NextToken: string; n: number }> => Promise.resolve({ NextToken: `t${++reads}`, n: Number(token?.slice(1) ?? 0) });
    await expect(readEveryPage('DescribeInstances', endless, (page) => taken.push(page.n))).rejects.toThrow(
      `DescribeInstances: page ${MAX_AWS_PAGES} still gave a NextToken: a listing that long is taken for one that never ends (a broken or hostile endpoint), and not read on`,
    );
    expect(reads).toBe(MAX_AWS_PAGES);
    expect(taken).toHaveLength(MAX_AWS_PAGES);
  });

  it('reads a listing of exactly the most pages it reads', async () => {
    let reads = 0;
    const last = (): Promise<{ NextToken?: string }> => Promise.resolve(++reads < MAX_AWS_PAGES ? { NextToken: `t${reads}` } : {});
    await readEveryPage('DescribeSpotPriceHistory', last, () => {});
    expect(reads).toBe(MAX_AWS_PAGES);
  });
});
