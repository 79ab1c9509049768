import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { drainModeOf } from './pool-options.js';

const defaults = { maxUnavailable: 1, minIntervalMs: 0 };

describe('drainModeOf', () => {
  it('is the per-instance drain without a mode, or with mode: instance', () => {
    expect(drainModeOf({}, defaults)).toEqual({ mode: 'instance' });
    expect(drainModeOf({ mode: 'instance' }, defaults)).toEqual({ mode: 'instance' });
  });

  it('takes the pool settings from the flow config, else the plugin-wide defaults', () => {
    expect(drainModeOf({ mode: 'pool' }, { maxUnavailable: 3, minIntervalMs: 5_000 })).toEqual({
      mode: 'pool',
      settings: { maxUnavailable: 3, minIntervalMs: 5_000, selector: undefined },
    });
    expect(drainModeOf({ mode: 'pool', maxUnavailable: '2', minInterval: '1m30s', selector: ' node-group=spot-a ' }, defaults)).toEqual({
      mode: 'pool',
      settings: { maxUnavailable: 2, minIntervalMs: 90_000, selector: 'node-group=spot-a' },
    });
  });

  it('answers INVALID_ARGUMENT naming the key', () => {
    const err = (() => {
      try {
        drainModeOf({ mode: 'pool', maxUnavailable: '2.5' }, defaults);
      } catch (e) {
        return e as PluginError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PluginError);
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.message).toBe('flow plugin config: "maxUnavailable" must be an integer >= 1, got "2.5"');
  });

  it('takes a minInterval up to 24h: a longer one would pace nothing (a Node timer over 2^31 ms fires at once)', () => {
    expect(drainModeOf({ mode: 'pool', minInterval: '24h' }, defaults)).toMatchObject({ settings: { minIntervalMs: 86_400_000 } });
    expect(() => drainModeOf({ mode: 'pool', minInterval: '720h' }, defaults)).toThrow(new PluginError(Code.InvalidArgument, 'flow plugin config: "minInterval" must be at most 24h, got "720h"'));
  });

  it('takes a maxUnavailable of several digits, and names every unknown key', () => {
    expect(drainModeOf({ mode: 'pool', maxUnavailable: '10' }, defaults)).toMatchObject({ settings: { maxUnavailable: 10 } });
    expect(() => drainModeOf({ mode: 'pool', maxUnavailble: '2', selectr: 'a=b' }, defaults)).toThrow(/unknown key "maxUnavailble", "selectr" \(k8s-drain takes/);
  });
});
