import { describe, expect, it } from 'vitest';
import { LazyAbort } from './lazy-abort.js';

describe('LazyAbort', () => {
  it('gives a signal read after the abort already aborted, with its reason; later aborts change nothing', () => {
    const call = new LazyAbort();
    const reason = new Error('deadline');
    call.abort(reason);
    call.abort(new Error('cancelled'));
    expect([call.aborted, call.signal.aborted, call.signal.reason]).toEqual([true, true, reason]);
  });

  it('tells its listener before the signal\'s own listeners, once; a listener that comes after the abort hears it at once', () => {
    const call = new LazyAbort();
    const heard: string[] = [];
    call.signal.addEventListener('abort', () => heard.push('signal'));
    call.whenAborted((reason) => heard.push(`listener ${(reason as Error).message}`));
    // One listener: a second would silently replace the first.
    expect(() => call.whenAborted(() => heard.push('second'))).toThrow('LazyAbort tells one listener');
    expect(call.aborted).toBe(false);
    call.abort(new Error('cancelled'));
    call.abort(new Error('again'));
    expect(heard).toEqual(['listener cancelled', 'signal']);
    call.whenAborted((reason) => heard.push(`late ${(reason as Error).message}`));
    expect(heard).toEqual(['listener cancelled', 'signal', 'late cancelled']);
  });
});
