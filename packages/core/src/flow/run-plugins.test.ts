import { createServer } from 'node:net';
import { Code, PluginError, systemClock, type CloudEvent, type PluginResponse } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { describe, expect, it } from 'vitest';
import type { ActionPlugin, PluginCall } from '../plugins/action-plugin.js';
import { grpcActionPlugin } from '../plugins/grpc-action-plugin.js';
import { mergeAttributes, runPlugins, type PluginStep } from './run-plugins.js';

/** A loopback port nothing listens on: taken, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The steps of a flow that gives its plugins no settings. */
const steps = (...plugins: ActionPlugin[]): PluginStep[] => plugins.map((plugin) => ({ plugin, config: {} }));

describe('runPlugins', () => {
  it('a plugin that cannot be reached fails the run naming the connection error, without grpc-js\' dangling "Resolution note:"', async () => {
    const plugin = grpcActionPlugin({ name: 'drain', address: `127.0.0.1:${await closedPort()}`, timeoutMs: 300, retry: { attempts: 1, initialBackoff: 0, maxBackoff: 0, multiplier: 1 } });
    try {
      const event = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: {} } };
      const result = await runPlugins({ event, attributes: {} }, 'spot', steps(plugin), { clock: systemClock, random: () => 0, signal: new AbortController().signal });
      expect(result.outcome).toBe('failed');
      expect(result.error).toMatch(/^drain: UNAVAILABLE: .*ECONNREFUSED/);
      expect(result.error).not.toMatch(/Resolution note/);
      expect(result.calls[0]!.message).not.toMatch(/Resolution note/);
    } finally {
      await plugin.close();
    }
  });
});

/** An in-process plugin answering with `answer`, retried twice on retryable codes with 100 ms backoff. */
function plugin(name: string, answer: (call: PluginCall) => Promise<Partial<PluginResponse>> | Partial<PluginResponse>): ActionPlugin & { calls: PluginCall[] } {
  const calls: PluginCall[] = [];
  return {
    name,
    timeoutMs: 1_000,
    retry: { attempts: 2, initialBackoff: 100, maxBackoff: 100, multiplier: 1 },
    calls,
    async invoke(_event, call) {
      calls.push(call);
      return { status: 'ok', message: '', attributes: {}, ...(await answer(call)) };
    },
    close: () => {},
  };
}

const spotEvent: CloudEvent = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } };

describe('runPlugins: per-flow settings', () => {
  it('each call carries the settings its step gives the plugin, on retries too', async () => {
    const a = plugin('a', (call) => (call.attempt === 1 ? Promise.reject(new PluginError(Code.Unavailable, 'busy')) : {}));
    const b = plugin('b', () => ({}));
    const result = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', [{ plugin: a, config: { mode: 'pool' } }, { plugin: b, config: {} }], { clock: systemClock, random: () => 0, signal: new AbortController().signal });
    expect(result.outcome).toBe('succeeded');
    expect(a.calls.map((c) => c.config)).toEqual([{ mode: 'pool' }, { mode: 'pool' }]);
    expect(b.calls.map((c) => c.config)).toEqual([{}]);
  });
});

describe('runPlugins: how a run ends', () => {
  it('a run cancelled before a plugin is reached ends interrupted there, without calling it', async () => {
    const a = plugin('a', () => ({}));
    const stop = new AbortController();
    stop.abort();
    const result = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(a), { clock: manualClock(), random: () => 0, signal: stop.signal });
    expect(result).toEqual({ outcome: 'interrupted', error: 'interrupted before a', calls: [], attributes: {}, reached: 0, ignored: [] });
    expect(a.calls).toEqual([]);
  });

  it('a call cut short by the cancel ends the run interrupted, not failed, with the plugin\'s answer', async () => {
    const stop = new AbortController();
    const a = plugin('a', () => ({ attributes: { node: 'ip-1' } }));
    const b = plugin('b', () => {
      stop.abort();
      throw new PluginError(Code.Canceled, 'call cancelled');
    });
    const result = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(a, b), { clock: manualClock(), random: () => 0, signal: stop.signal });
    expect(result).toMatchObject({ outcome: 'interrupted', error: 'b: interrupted: call cancelled', reached: 1, attributes: { node: 'ip-1' } });
    expect(result.calls.map((c) => [c.plugin, c.code])).toEqual([['a', 'OK'], ['b', 'CANCELLED']]);
  });

  it('a cancel during the wait before a retry ends the run interrupted, without the retry', async () => {
    const clock = manualClock();
    const stop = new AbortController();
    const a = plugin('a', () => {
      throw new PluginError(Code.Unavailable, 'down');
    });
    const running = runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(a), { clock, random: () => 0, signal: stop.signal });
    await expect.poll(() => clock.sleeping).toBe(1);
    stop.abort();
    expect(await running).toMatchObject({ outcome: 'interrupted', error: 'interrupted while waiting to retry a', reached: 0 });
    expect(a.calls).toHaveLength(1);
  });

  it('says a failure is worth a later try only when its code is retryable', async () => {
    const clock = manualClock();
    const deps = { clock, random: () => 0, signal: new AbortController().signal };
    const busy = plugin('a', () => {
      throw new PluginError(Code.Unavailable, 'down');
    });
    const running = runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(busy), deps);
    await expect.poll(() => clock.sleeping).toBe(1);
    clock.advance(100);
    expect(await running).toMatchObject({ outcome: 'failed', error: 'a: UNAVAILABLE after 2 attempts: down', retryable: true });
    const denied = plugin('a', () => {
      throw new PluginError(Code.PermissionDenied, 'no');
    });
    const permanent = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(denied), deps);
    expect(permanent).toMatchObject({ outcome: 'failed', error: 'a: PERMISSION_DENIED: no' });
    expect(permanent).not.toHaveProperty('retryable');
  });

  it('times each call on the clock and reports it as it ends', async () => {
    const clock = manualClock();
    const reported: string[] = [];
    const a = plugin('a', async () => {
      clock.advance(250);
      return { message: 'drained' };
    });
    const result = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(a), { clock, random: () => 0, signal: new AbortController().signal, onCall: (c) => reported.push(`${c.plugin} ${c.code} ${c.message}`) });
    expect(result).toStrictEqual({
      outcome: 'succeeded',
      calls: [{ plugin: 'a', attempt: 1, code: 'OK', message: 'drained', startedAt: Date.parse('2026-11-25T10:00:00Z'), durationMs: 250 }],
      attributes: {},
      reached: 1,
      ignored: [],
    });
    expect(reported).toEqual(['a OK drained']);
    const failing = plugin('a', async () => {
      clock.advance(40);
      throw new PluginError(Code.NotFound, 'no such node');
    });
    const failed = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(failing), { clock, random: () => 0, signal: new AbortController().signal });
    expect(failed.calls).toMatchObject([{ code: 'NOT_FOUND', durationMs: 40 }]);
  });
});

describe('runPlugins: plugin errors as logs show them', () => {
  it.each([
    ['grpc-js\'s empty resolution note is dropped', 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ', 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1.'],
    ['however much space comes before and after it', 'refused.  Resolution note:', 'refused.'],
    ['a resolution note that says something is kept', 'refused. Resolution note: DNS said no', 'refused. Resolution note: DNS said no'],
  ])('%s', async (_name, message, shown) => {
    const a = plugin('a', () => {
      throw new PluginError(Code.NotFound, message);
    });
    const result = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(a), { clock: manualClock(), random: () => 0, signal: new AbortController().signal });
    expect(result.error).toBe(`a: NOT_FOUND: ${shown}`);
    expect(result.calls[0]!.message).toBe(shown);
  });

  it('lists the attributes that would have changed the event\'s own labels', async () => {
    const a = plugin('a', () => ({ attributes: { instance_id: 'i-2', node: 'ip-1' } }));
    const result = await runPlugins({ event: spotEvent, attributes: {} }, 'spot', steps(a), { clock: manualClock(), random: () => 0, signal: new AbortController().signal });
    expect(result).toMatchObject({ ignored: ['instance_id'], attributes: { instance_id: 'i-2', node: 'ip-1' } });
  });
});

describe('mergeAttributes', () => {
  it('hands on the event itself when there is nothing to add, rather than a copy per call', () => {
    expect(mergeAttributes(spotEvent, {})).toBe(spotEvent);
    expect(mergeAttributes(spotEvent, { instance_id: 'i-2' })).toBe(spotEvent);
  });

  it('adds attributes as labels, also to an event with no labels or no object data, and leaves the original alone', () => {
    expect(mergeAttributes(spotEvent, { node: 'ip-1', instance_id: 'i-2' }).data).toEqual({ labels: { instance_id: 'i-1', node: 'ip-1' } });
    expect(spotEvent.data).toEqual({ labels: { instance_id: 'i-1' } });
    expect(mergeAttributes({ ...spotEvent, data: { detail: 'x' } }, { node: 'ip-1' }).data).toEqual({ detail: 'x', labels: { node: 'ip-1' } });
    expect(mergeAttributes({ ...spotEvent, data: { labels: null } }, { node: 'ip-1' }).data).toEqual({ labels: { node: 'ip-1' } });
    expect(mergeAttributes({ ...spotEvent, data: 'text' }, { node: 'ip-1' }).data).toEqual({ labels: { node: 'ip-1' } });
    expect(mergeAttributes({ ...spotEvent, data: null }, { node: 'ip-1' }).data).toEqual({ labels: { node: 'ip-1' } });
  });
});
