import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { compileMatcher, compileTypePatterns, describeMismatch } from './event-matcher.js';
import { compileGroupKey, MAX_GROUP_KEY_CHARS } from './group-key.js';

const event = (type: string, labels: Record<string, string>, extra: Record<string, unknown> = {}): CloudEvent => ({
  id: 'e1', source: 's', specversion: '1.0', type, data: { labels, annotations: { summary: 'reclaimed' }, ...extra },
});

describe('allowedEvents', () => {
  const allowed = compileTypePatterns(['prometheus.server.alert.*', 'aws.ec2.spot.interruption']);
  it.each([
    ['prometheus.server.alert.SpotTerminationNotice', true],
    ['prometheus.server.alert.SpotTerminationNotice.resolved', false],
    ['prometheus.server.alert.', false],
    ['aws.ec2.spot.interruption', true],
    ['aws.ec2.spot.interruptionX', false],
    ['prometheusXserver.alert.A', false],
  ])('%s → %s', (type, expected) => expect(allowed(type)).toBe(expected));

  it('a * in the middle stands for one segment, so resolutions can be chosen', () => {
    const resolved = compileTypePatterns(['prometheus.server.alert.*.resolved']);
    expect(resolved('prometheus.server.alert.Spot.resolved')).toBe(true);
    expect(resolved('prometheus.server.alert.Spot')).toBe(false);
  });

  it('a * beside other characters stands for one or more characters of that segment (the README says so)', () => {
    const spot = compileTypePatterns(['prometheus.server.alert.Spot*']);
    expect(spot('prometheus.server.alert.SpotInstanceTerminating')).toBe(true);
    expect(spot('prometheus.server.alert.Spot')).toBe(false);
    expect(spot('prometheus.server.alert.SpotX.resolved')).toBe(false);
  });
});

describe('filters', () => {
  const type = 'prometheus.server.alert.Spot';
  it.each([
    ['equality', { cluster_name: 'prod' }, { cluster_name: 'prod' }, true],
    ['equality, other value', { cluster_name: 'prod' }, { cluster_name: 'dev' }, false],
    ['equality, label missing', { cluster_name: 'prod' }, {}, false],
    ['any of a list', { region: ['eu-west-1', 'us-east-1'] }, { region: 'us-east-1' }, true],
    ['none of a list', { region: ['eu-west-1', 'us-east-1'] }, { region: 'ap-south-1' }, false],
    ['negation', { severity: { not: 'info' } }, { severity: 'critical' }, true],
    ['negation of one value, matched', { severity: { not: 'info' } }, { severity: 'info' }, false],
    ['negation of a list', { severity: { not: ['info', 'warning'] } }, { severity: 'warning' }, false],
    ['negation, label missing', { severity: { not: 'info' } }, {}, true],
    ['anchored regex', { node: { regex: 'ip-10-.*' } }, { node: 'ip-10-0-1-23' }, true],
    ['anchored regex does not match inside', { node: { regex: '10-0' } }, { node: 'ip-10-0-1-23' }, false],
    ['every filter must hold', { cluster_name: 'prod', region: 'x' }, { cluster_name: 'prod', region: 'y' }, false],
  ] as const)('%s', (_name, filters, labels, expected) => {
    expect(compileMatcher([type], filters as never)(event(type, labels)) === undefined).toBe(expected);
  });

  it('reaches CloudEvent attributes and dotted paths into data', () => {
    const match = compileMatcher([type], { source: 's', 'annotations.summary': 'reclaimed', 'labels.type': 'spot' });
    expect(match(event(type, { type: 'spot' }))).toBeUndefined();
    expect(match(event(type, { type: 'ondemand' }))).toEqual({ key: 'labels.type', actual: 'ondemand', expected: '"spot"' });
  });

  it('a type that is not allowed never matches, whatever the filters', () => {
    expect(compileMatcher(['other', 'b.*'], { x: 'y' })(event(type, {}))).toEqual({ key: 'type', actual: type, expected: 'one of allowedEvents [other, b.*]' });
  });

  it.each([
    ['a value', { instance_action: ['terminate', 'stop'] }, { instance_action: 'reboot' }, 'instance_action is "reboot", expected one of [terminate, stop]'],
    ['a missing label', { cluster_name: 'prod' }, {}, 'cluster_name absent, expected "prod"'],
    ['a negation', { severity: { not: ['info'] } }, { severity: 'info' }, 'severity is "info", expected none of [info]'],
    ['a regex', { node: { regex: 'ip-.*' } }, { node: 'x' }, 'node is "x", expected matching /^(?:ip-.*)$/'],
    ['the first filter that fails, in the order written', { a: 'x', b: 'y' }, { a: 'x', b: 'z' }, 'b is "z", expected "y"'],
  ] as const)('names the filter that failed on %s, with what it got and wanted', (_name, filters, labels, text) => {
    expect(describeMismatch(compileMatcher([type], filters as never)(event(type, labels))!)).toBe(text);
  });
});

describe('group key', () => {
  it('is the flow plus the values of the groupBy keys', () => {
    const key = compileGroupKey('spot', ['instance_id', 'region']);
    expect(key(event('t', { instance_id: 'i-1', region: 'eu' }))).toBe('spot:{instance_id="i-1",region="eu"}');
    expect(key(event('t', { instance_id: 'i-1', region: 'eu', node: 'other' }))).toBe('spot:{instance_id="i-1",region="eu"}');
    expect(key(event('t', { instance_id: 'i-1' }))).toBe('spot:{instance_id="i-1",region=""}');
  });

  it('falls back to the event id when none of the keys is present', () => {
    expect(compileGroupKey('spot', ['instance_id'])(event('t', {}))).toBe('spot:{id="e1"}');
  });

  it('writes a key longer than MAX_GROUP_KEY_CHARS as its SHA-256: the same values make the same key, other values another', () => {
    const key = compileGroupKey('spot', ['instance_id']);
    const long = (fill: string) => key(event('t', { instance_id: fill.repeat(MAX_GROUP_KEY_CHARS) }));
    expect(long('a')).toMatch(/^spot:\{sha256="[0-9a-f]{64}"\}$/);
    expect(long('a')).toBe(long('a'));
    expect(long('b')).not.toBe(long('a'));
    // Just within the bound, the key is kept as written.
    const within = 'x'.repeat(MAX_GROUP_KEY_CHARS - 'spot:{instance_id=""}'.length);
    expect(key(event('t', { instance_id: within }))).toBe(`spot:{instance_id="${within}"}`);
    expect(compileGroupKey('spot', [])(event('t', { instance_id: 'i-1' }))).toBe('spot:{id="e1"}');
  });

  it('quotes values so that separators in them cannot make two groups collide', () => {
    const key = compileGroupKey('f', ['a', 'b']);
    expect(key(event('t', { a: 'x",b="y', b: '' }))).not.toBe(key(event('t', { a: 'x', b: 'y' })));
  });
});
