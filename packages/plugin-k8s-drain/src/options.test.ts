import { steadyClock } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NODE_LABEL, DEFAULT_TAINT, parseNodeLabel, parseTaint } from './node-marks.js';
import { resolveDrainOptions, SERVICE } from './options.js';

describe('resolveDrainOptions', () => {
  it('fills in every default the README documents', () => {
    const { backoff, logger, clock, taint, nodeLabelMark, ...rest } = resolveDrainOptions();
    expect(rest).toEqual({
      nodeLabel: 'node',
      instanceIdLabel: 'instance_id',
      terminationTimeLabel: 'termination_time',
      deleteEmptyDirData: true,
      gracePeriodSeconds: undefined,
      concurrency: 20,
      maxInFlight: 64,
      watchCache: true,
      waitForDeletion: true,
      deletionPollMs: 1_000,
      terminationMarginMs: 10_000,
      replyMarginMs: 1_000,
      maxDrainMs: 120_000,
      nodeNotFound: 'error',
      eventNamespace: 'default',
      poolNamespace: 'default',
      poolMaxUnavailable: 1,
      poolMinIntervalMs: 0,
      dryRun: false,
    });
    expect(taint).toEqual({ key: 'hollowtrees.io/spot-termination', value: 'true', effect: 'NoSchedule' });
    expect(nodeLabelMark).toEqual({ key: 'hollowtrees.io/spot-termination', value: 'true' });
    // Copies: a caller changing its options cannot change the frozen defaults.
    expect(taint).not.toBe(DEFAULT_TAINT);
    expect(nodeLabelMark).not.toBe(DEFAULT_NODE_LABEL);
    expect(clock).toBe(steadyClock);
    // 250 ms doubling to 5 s, jittered: the first wait is at most 250 ms, the tenth at most 5 s.
    expect(backoff(1)).toBeLessThanOrEqual(250);
    expect(backoff(10)).toBeLessThanOrEqual(5_000);
    expect(typeof logger.info).toBe('function');
    expect(SERVICE).toBe('hollowtrees-k8s-drain');
  });

  it('keeps what the caller set, falsy values too', () => {
    const o = resolveDrainOptions({ deleteEmptyDirData: false, watchCache: false, waitForDeletion: false, dryRun: true, gracePeriodSeconds: 0, deletionPollMs: 1, terminationMarginMs: 0, replyMarginMs: 0, poolMinIntervalMs: 0, concurrency: 1, maxInFlight: 1, poolMaxUnavailable: 1, nodeNotFound: 'skip', eventNamespace: 'ops' });
    // The pools' resolution markers live in the plugin's own namespace unless told otherwise.
    expect(resolveDrainOptions({ ownPod: { namespace: 'hollowtrees', name: 'p' } }).poolNamespace).toBe('hollowtrees');
    expect(resolveDrainOptions({ ownPod: { namespace: 'hollowtrees', name: 'p' }, poolNamespace: 'ops' }).poolNamespace).toBe('ops');
    expect(o).toMatchObject({ deleteEmptyDirData: false, watchCache: false, waitForDeletion: false, dryRun: true, gracePeriodSeconds: 0, deletionPollMs: 1, terminationMarginMs: 0, replyMarginMs: 0, poolMinIntervalMs: 0, concurrency: 1, maxInFlight: 1, poolMaxUnavailable: 1, nodeNotFound: 'skip', eventNamespace: 'ops' });
    expect(resolveDrainOptions({ maxDrainMs: 86_400_000, poolMinIntervalMs: 86_400_000 })).toMatchObject({ maxDrainMs: 86_400_000, poolMinIntervalMs: 86_400_000 });
  });

  it.each([
    ['concurrency', 0],
    ['concurrency', 1.5],
    ['maxInFlight', 0],
    ['maxInFlight', 2.5],
    ['poolMaxUnavailable', 0],
    ['poolMaxUnavailable', Number.NaN],
  ])('refuses %s %s: an integer >= 1', (name, value) => {
    expect(() => resolveDrainOptions({ [name]: value })).toThrow(new RangeError(`${name} must be an integer >= 1, got ${value}`));
  });

  it('refuses gracePeriodSeconds -1: a non-negative number', () => {
    expect(() => resolveDrainOptions({ gracePeriodSeconds: -1 })).toThrow(new RangeError('gracePeriodSeconds must be a non-negative number, got -1'));
  });

  // 0 ms between polls spins on the API server; a drain bounded at 0 ms fails at once; a timer of 2^31 ms or more fires after 1 ms.
  it.each([
    ['deletionPollMs', 0, 1],
    ['deletionPollMs', Number.POSITIVE_INFINITY, 1],
    ['terminationMarginMs', Number.NaN, 0],
    ['replyMarginMs', -0.5, 0],
    ['maxDrainMs', 0, 1],
    ['maxDrainMs', 2 ** 31, 1],
    ['poolMinIntervalMs', -1, 0],
    ['poolMinIntervalMs', 30 * 86_400_000, 0],
  ])('refuses %s %s: a wait from its minimum to 24h', (name, value, min) => {
    expect(() => resolveDrainOptions({ [name]: value })).toThrow(new RangeError(`${name} must be from ${min} to 86400000 ms (24h), got ${value}`));
  });
});

describe('node marks', () => {
  it('parses a taint as kubectl writes it, with or without a value', () => {
    expect(parseTaint('spot=true:NoExecute')).toEqual({ key: 'spot', value: 'true', effect: 'NoExecute' });
    expect(parseTaint('spot:PreferNoSchedule')).toEqual({ key: 'spot', value: '', effect: 'PreferNoSchedule' });
    expect(parseTaint('spot=true:NoSchedule')).toEqual({ key: 'spot', value: 'true', effect: 'NoSchedule' });
    expect(() => parseTaint('spot=true:Sometimes')).toThrow('taint "spot=true:Sometimes" is not key=value:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute');
    expect(() => parseTaint('spot=true')).toThrow(/is not key=value:Effect/);
    // The whole text, not a part of it: a space is never in a key, a value or an effect.
    for (const text of ['bad key=v:NoSchedule', 'spot=true:NoSchedule extra', 'spot=a:b:NoSchedule']) expect(() => parseTaint(text)).toThrow(/is not key=value:Effect/);
  });

  it('parses a label key=value', () => {
    expect(parseNodeLabel('drained=yes')).toEqual({ key: 'drained', value: 'yes' });
    expect(parseNodeLabel('drained=')).toEqual({ key: 'drained', value: '' });
    expect(() => parseNodeLabel('drained')).toThrow('label "drained" is not key=value');
    for (const text of ['bad key=yes', 'drained=yes no']) expect(() => parseNodeLabel(text)).toThrow(`label "${text}" is not key=value`);
  });
});
