import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

describe('Go-style durations', () => {
  it.each([
    ['0s', 0], ['0', 0], ['300ms', 300], ['1s', 1_000], ['1.5s', 1_500], ['5m30s', 330_000], ['1h30m', 5_400_000], ['2h', 7_200_000], ['1500us', 1.5], ['1m0.5s', 60_500],
  ])('parses %s as %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '5', '5 m', 'm5', '-1s', '1d', '1s ', 'abc'])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());

  it.each([[0, '0s'], [250, '250ms'], [90_000, '1m30s'], [3_600_000, '1h0m0s']])('formats %d ms as %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});
