import { describe, expect, it } from 'vitest';
import { retryStrategy } from './retry-strategy.js';

type Strategy = ReturnType<typeof retryStrategy>;
type Token = Awaited<ReturnType<Strategy['acquireInitialRetryToken']>>;

const retryAfter = async (
  strategy: Strategy,
  token: Token,
  errorType: 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR',
  error?: Error & { cause?: Error },
): Promise<Token | undefined> => strategy.refreshRetryTokenForRetry(token, { errorType, ...(error && { error }) }).catch(() => undefined);

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

  it('charges a retry after a timeout 10 tokens, after any other transient error 5', async () => {
    const timeout = Object.assign(new Error('socket hang up'), { name: 'TimeoutError', cause: undefined });
    const other = Object.assign(new Error('socket hang up'), { name: 'ECONNRESET', cause: undefined });
    // 14 tokens: one retry after a timeout (10), then none at 5; the same quota takes two retries of another error.
    const afterTimeout = retryStrategy({ maxAttempts: 10, retryQuota: 14, random: () => 0 });
    expect(await retryAfter(afterTimeout, await afterTimeout.acquireInitialRetryToken('scope'), 'TRANSIENT', timeout)).toBeDefined();
    expect(await retryAfter(afterTimeout, await afterTimeout.acquireInitialRetryToken('scope'), 'TRANSIENT', other)).toBeUndefined();
    const afterOther = retryStrategy({ maxAttempts: 10, retryQuota: 14, random: () => 0 });
    expect(await retryAfter(afterOther, await afterOther.acquireInitialRetryToken('scope'), 'TRANSIENT', other)).toBeDefined();
    expect(await retryAfter(afterOther, await afterOther.acquireInitialRetryToken('scope'), 'TRANSIENT', other)).toBeDefined();
    // A throttling error named like a timeout is not a timeout: 5 tokens.
    const throttled = retryStrategy({ maxAttempts: 10, retryQuota: 10, random: () => 0 });
    expect(await retryAfter(throttled, await throttled.acquireInitialRetryToken('scope'), 'THROTTLING', timeout)).toBeDefined();
    expect(await retryAfter(throttled, await throttled.acquireInitialRetryToken('scope'), 'THROTTLING', timeout)).toBeDefined();
  });

  it('gives one token back for a success at the first try, and never fills the quota above its size', async () => {
    const strategy = retryStrategy({ maxAttempts: 10, retryQuota: 10, random: () => 0 });
    const fresh = (): Promise<Token> => strategy.acquireInitialRetryToken('scope');
    // Full at 10: successes add nothing, so two retries of 5 empty it.
    for (let i = 0; i < 5; i++) strategy.recordSuccess(await fresh());
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeDefined();
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeDefined();
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeUndefined();
    // Empty: four first-try successes give 4 tokens, not enough for a retry; the fifth makes 5.
    for (let i = 0; i < 4; i++) strategy.recordSuccess(await fresh());
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeUndefined();
    strategy.recordSuccess(await fresh());
    expect(await retryAfter(strategy, await fresh(), 'THROTTLING')).toBeDefined();
  });

  it('starts with no delay and counts retries from the first', async () => {
    const strategy = retryStrategy();
    const first = await strategy.acquireInitialRetryToken('scope');
    expect([first.getRetryCount(), first.getRetryDelay()]).toEqual([0, 0]);
  });

  it('uses 4 attempts, a 100 ms base, 500 ms after throttling and a 2 s cap by default', async () => {
    const strategy = retryStrategy({ random: () => 0.999_999 });
    let token = await strategy.acquireInitialRetryToken('scope');
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      token = (await retryAfter(strategy, token, 'SERVER_ERROR'))!;
      delays.push(token.getRetryDelay());
    }
    expect(delays).toEqual([100, 200, 400]);
    expect(await retryAfter(strategy, token, 'SERVER_ERROR')).toBeUndefined();
    const throttled = retryStrategy({ maxAttempts: 10, random: () => 0.999_999 });
    let t = await throttled.acquireInitialRetryToken('scope');
    const throttledDelays: number[] = [];
    for (let i = 0; i < 4; i++) {
      t = (await retryAfter(throttled, t, 'THROTTLING'))!;
      throttledDelays.push(t.getRetryDelay());
    }
    expect(throttledDelays).toEqual([500, 1_000, 2_000, 2_000]);
  });
});
