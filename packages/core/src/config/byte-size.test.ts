import { describe, expect, it } from 'vitest';
import { formatByteSize, parseByteSize } from './byte-size.js';

describe('parseByteSize', () => {
  it.each([
    ['1024', 1024],
    ['1024B', 1024],
    ['512KiB', 512 * 1024],
    ['64MiB', 64 * 1024 * 1024],
    ['64Mi', 64 * 1024 * 1024],
    ['64 MiB', 64 * 1024 * 1024],
    ['1GiB', 1024 ** 3],
    ['2Ti', 2 * 1024 ** 4],
    [' 1Gi ', 1024 ** 3],
  ])('reads %j as %d bytes', (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(['', 'MiB', '64MB', '64mb', '64M', '1.5GiB', '-1MiB', '64 MiB extra', '0x400', '1e6', '99999999999999999999'])('refuses %j', (text) => expect(parseByteSize(text)).toBeUndefined());
});

describe('formatByteSize', () => {
  it.each([
    [1024, '1KiB'],
    [64 * 1024 * 1024, '64MiB'],
    [64 * 1024 ** 3, '64GiB'],
    [1536, '1536B'],
    [1023, '1023B'],
  ])('writes %d as %s', (bytes, text) => expect(formatByteSize(bytes)).toBe(text));
});
