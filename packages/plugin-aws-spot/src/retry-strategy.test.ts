import { describe, expect, it } from 'vitest';
import { retryStrategy } from './retry-strategy.js';

type Strategy = ReturnType<typeof retryStrategy>;
type Token = Awaited<ReturnType<Strategy['acquireInitialRetryToken']>>;

const retryAfter = async (strategy: Strategy, token: Token, errorType: 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR'): Promise<Token | undefined> =>
  strategy.refreshRetryTokenForRetry(token, { errorType }).catch(() => undefined);

describe('retryStrategy', () => {
  it('backs off longer after throttling than after a transient error, doubling up to the cap', async () => {
    const strategy = retryStrategy({ maxAttempts: 10, baseDelayMs: 100, throttlingBaseDelayMs: 500, maxDelayMs: 2_000, random: () => 0.999 });
    const delays = async (errorType: 'THROTTLING' | 'SERVER_ERROR'): Promise<number[]> => {
      let token = await strategy.acquireInitialRetryToken('scope');
      const out: number[] = [];
      for (let i = 0; i < 4; i++) {
        token = (await retryAfter(strategy, token, errorType))!;
        out.push(token.getRetryDelay());
      }
      return out;
    };
    expect(await delays('SERVER_ERROR')).toEqual([100, 200, 400, 799]);
    expect(await delays('THROTTLING')).toEqual([500, 999, 1_998, 1_998]);
  });

  it('never retries a client error, nor beyond the attempts', async () => {
    const strategy = retryStrategy({ maxAttempts: 2 });
    const first = await strategy.acquireInitialRetryToken('scope');
    expect(await retryAfter(strategy, first, 'CLIENT_ERROR')).toBeUndefined();
    const second = await retryAfter(strategy, first, 'THROTTLING');
    expect(second?.getRetryCount()).toBe(1);
    expect(await retryAfter(strategy, second!, 'THROTTLING')).toBeUndefined();
  });

  it('stops retrying once the client’s retry quota is spent, and earns it back with successes', async () => {
    // 12 tokens: two retries of 5 each, then none.
    const strategy = retryStrategy({ maxAttempts: 10, retryQuota: 12, random: () => 0 });
    const fresh = (): Promise<Token> => strategy.acquireInitialRetryToken('scope');
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeDefined();
    const second = await retryAfter(strategy, await fresh(), 'THROTTLING');
    expect(second).toBeDefined();
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeUndefined();
    // The retry that then worked gives its 5 back: one more retry is allowed.
    strategy.recordSuccess(second!);
    expect(await retryAfter(strategy, await fresh(), 'TRANSIENT')).toBeDefined();
    expect(await retryAfter(strategy, await fresh(), 'TRANSIENT')).toBeUndefined();
  });
});
