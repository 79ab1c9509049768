import { describe, expect, it } from 'vitest';
import { CoalescingBatcher, type BatchResults } from './coalescing-batcher.js';

describe('CoalescingBatcher', () => {
  it('answers the keys of one window with one call, a key asked twice once', async () => {
    const batches: string[][] = [];
    const batcher = new CoalescingBatcher<string, string>(async (keys) => (batches.push([...keys]), new Map(keys.map((k) => [k, k.toUpperCase()]))), { windowMs: 5, maxBatch: 10 });
    expect(await Promise.all(['a', 'b', 'a'].map((k) => batcher.get(k)))).toEqual(['A', 'B', 'A']);
    expect(batches).toEqual([['a', 'b']]);
  });

  it.each([
    ['a full batch', 2],
    ['the window', 10],
  ])('a batch call that throws before it returns a promise rejects every key of the batch (sent by %s), and nothing escapes', async (_by, maxBatch) => {
    // Thrown in the window's timer, it escaped as an uncaught exception (the process ended); in a full batch's get(), only that key heard of it and the others waited for ever.
    const run = (keys: readonly string[]): Promise<BatchResults<string, string>> => {
      throw new Error(`cannot ask for ${keys.join(', ')}`);
    };
    const batcher = new CoalescingBatcher<string, string>(run, { windowMs: 5, maxBatch });
    const outcomes = await Promise.all(['a', 'b'].map((k) => batcher.get(k).then(() => 'answered', (err: Error) => err.message)));
    expect(outcomes).toEqual(['cannot ask for a, b', 'cannot ask for a, b']);
  });
});
