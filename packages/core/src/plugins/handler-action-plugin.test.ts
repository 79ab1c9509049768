import { Code, PluginError, type HandleContext } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { handlerActionPlugin } from './handler-action-plugin.js';

const event = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: {} } };
const retry = { attempts: 1, initialBackoff: 0, maxBackoff: 0, multiplier: 1 };

describe('an in-process plugin on an injected clock', () => {
  it('gets its deadline from the clock and is cut off with DEADLINE_EXCEEDED when the clock passes it', async () => {
    const clock = manualClock();
    const seen: Array<Date | undefined> = [];
    const handle = (_e: unknown, ctx: HandleContext): Promise<never> => {
      seen.push(ctx.deadline);
      return new Promise(() => {}); // answers only when cut off
    };
    const plugin = handlerActionPlugin('slow', { handle }, 30_000, retry, clock);
    const call = plugin.invoke(event, { flow: 'f', attempt: 1, config: {} });
    expect(seen).toEqual([new Date(clock.now() + 30_000)]);
    clock.advance(30_000);
    const err = await call.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe(Code.DeadlineExceeded);
  });

  it("aborts the handler's signal with the reason a served plugin's signal gets: PluginError DEADLINE_EXCEEDED", async () => {
    const clock = manualClock();
    const reasons: unknown[] = [];
    const handle = (_e: unknown, ctx: HandleContext): Promise<never> =>
      new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject((reasons.push(ctx.signal.reason), ctx.signal.reason))));
    const call = handlerActionPlugin('slow', { handle }, 1_000, retry, clock).invoke(event, { flow: 'f', attempt: 1, config: {} });
    clock.advance(1_000);
    await call.catch(() => {});
    expect(reasons).toEqual([new PluginError(Code.DeadlineExceeded, 'deadline exceeded')]);
    expect(reasons[0]).toBeInstanceOf(PluginError);
  });

  it('leaves no deadline running once the call is over', async () => {
    const clock = manualClock();
    const plugin = handlerActionPlugin('quick', { handle: () => ({ message: 'done' }) }, 30_000, retry, clock);
    expect(await plugin.invoke(event, { flow: 'f', attempt: 1, config: {} })).toMatchObject({ message: 'done' });
    expect(clock.sleeping).toBe(0);
  });
});
