import { describe, expect, it } from 'vitest';
import { rememberingRecent } from './recent-results.js';
import { normalizeTime, timestampFromString, timestampFromStringShared, timestampToString } from './timestamp.js';

const SECONDS = Date.UTC(2026, 0, 2, 3, 4, 5) / 1000;

describe('RFC 3339 times', () => {
  it.each([
    ['2026-01-02T03:04:05Z', { seconds: SECONDS, nanos: 0 }],
    ['2026-01-02t03:04:05z', { seconds: SECONDS, nanos: 0 }],
    ['2026-01-02 03:04:05Z', { seconds: SECONDS, nanos: 0 }],
    ['2026-01-02T03:04:05.5Z', { seconds: SECONDS, nanos: 500_000_000 }],
    ['2026-01-02T03:04:05.000000001Z', { seconds: SECONDS, nanos: 1 }],
    ['2026-01-02T05:04:05.25+02:00', { seconds: SECONDS, nanos: 250_000_000 }],
    ['2026-01-02T00:04:05-03:00', { seconds: SECONDS, nanos: 0 }],
  ])('reads %s', (text, timestamp) => {
    expect(timestampFromString(text)).toEqual(timestamp);
  });

  it.each([
    'yesterday',
    '2026-01-02T03:04:05', // no zone: local time is not a point in time
    'x2026-01-02T03:04:05Z',
    '2026-01-02T03:04:05Zjunk',
    '2026-01-02T03:04:05.Z',
    '2026-13-02T03:04:05Z',
    '2026-01-02T03:04:05+0200',
    // Date.parse rolls these over to another day instead of refusing them.
    '2026-02-30T03:04:05Z',
    '2025-02-29T03:04:05Z',
    '2026-04-31T03:04:05Z',
    '2026-01-02T24:00:00Z',
  ])('rejects %s, naming it', (text) => {
    expect(() => timestampFromString(text)).toThrow(new RangeError(`not an RFC 3339 time: ${JSON.stringify(text)}`));
  });

  it('reads a leap day of a leap year', () => {
    expect(timestampFromString('2028-02-29T12:00:00Z')).toEqual({ seconds: Date.UTC(2028, 1, 29, 12) / 1000, nanos: 0 });
  });

  it('writes UTC with Z, trailing zeros of the fraction dropped, none for whole seconds', () => {
    expect(timestampToString({ seconds: SECONDS, nanos: 0 })).toBe('2026-01-02T03:04:05Z');
    expect(timestampToString({ seconds: SECONDS, nanos: 120_000_000 })).toBe('2026-01-02T03:04:05.12Z');
    expect(timestampToString({ seconds: SECONDS, nanos: 7 })).toBe('2026-01-02T03:04:05.000000007Z');
    // The last one is remembered: the same time again, then another second with the same fraction.
    expect(timestampToString({ seconds: SECONDS, nanos: 7 })).toBe('2026-01-02T03:04:05.000000007Z');
    expect(timestampToString({ seconds: SECONDS + 1, nanos: 7 })).toBe('2026-01-02T03:04:06.000000007Z');
    expect(timestampToString({ seconds: SECONDS + 1, nanos: 0 })).toBe('2026-01-02T03:04:06Z');
  });

  it('normalizeTime turns any RFC 3339 form into that one', () => {
    expect(normalizeTime('2026-01-02t05:04:05.500+02:00')).toBe('2026-01-02T03:04:05.5Z');
  });

  it('normalizeTime answers a time it has seen as the first time, and an invalid one throws every time', () => {
    expect(normalizeTime('2026-01-02T03:04:05.120Z')).toBe('2026-01-02T03:04:05.12Z');
    expect(normalizeTime('2026-01-02T03:04:05.120Z')).toBe('2026-01-02T03:04:05.12Z');
    expect(() => normalizeTime('2026-13-02T03:04:05Z')).toThrow(RangeError);
    expect(() => normalizeTime('2026-13-02T03:04:05Z')).toThrow(RangeError);
  });

  it('timestampFromStringShared: one frozen Timestamp per time, equal to timestampFromString', () => {
    const first = timestampFromStringShared('2026-01-02T03:04:05.5Z');
    expect(first).toEqual(timestampFromString('2026-01-02T03:04:05.5Z'));
    expect(timestampFromStringShared('2026-01-02T03:04:05.5Z')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });
});

describe('rememberingRecent', () => {
  it('calls fn once per distinct input, forgets the oldest past max, and does not remember a throw', () => {
    const calls: string[] = [];
    const upper = rememberingRecent((s) => {
      calls.push(s);
      if (s === 'bad') throw new Error('bad input');
      return s.toUpperCase();
    }, 2);
    expect([upper('a'), upper('a'), upper('b'), upper('a')]).toEqual(['A', 'A', 'B', 'A']);
    expect(calls).toEqual(['a', 'b']);
    upper('c'); // the third distinct input: forgets a, the oldest, and keeps b
    expect([upper('b'), upper('a')]).toEqual(['B', 'A']);
    expect(calls).toEqual(['a', 'b', 'c', 'a']);
    expect(() => upper('bad')).toThrow('bad input');
    expect(() => upper('bad')).toThrow('bad input');
    expect(calls.filter((c) => c === 'bad')).toHaveLength(2);
  });
});
