import { describe, expect, it } from 'vitest';
import { textStart } from './text-start.js';

describe('textStart', () => {
  it('keeps text up to the limit whole, and cuts longer text to the limit', () => {
    expect(textStart('abc', 3)).toBe('abc');
    expect(textStart('abcd', 3)).toBe('abc');
  });

  it('leaves out a character whose surrogate pair the limit would split, and keeps one that ends at the limit', () => {
    expect(textStart('ab🙂c', 3)).toBe('ab');
    expect(textStart('ab🙂c', 4)).toBe('ab🙂');
    expect(textStart('🙂🙂', 1)).toBe('');
  });
});
