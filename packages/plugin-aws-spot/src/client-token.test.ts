import { describe, expect, it } from 'vitest';
import { clientToken } from './client-token.js';

const event = { source: 'test', id: 'evt-1' };

describe('clientToken', () => {
  it('is the same for the same event, purpose and replacements gone, in any order, and fits EC2’s 64 characters', () => {
    expect(clientToken(event, 'spot')).toBe(clientToken({ ...event }, 'spot', []));
    expect(clientToken(event, 'spot', ['i-0b', 'i-0a'])).toBe(clientToken(event, 'spot', ['i-0a', 'i-0b']));
    expect(clientToken(event, 'spot')).toMatch(/^hollowtrees-[0-9a-f]{40}$/);
  });

  it('changes with each replacement gone, so a retry does not get a dead replacement’s fleet back', () => {
    const tokens = [clientToken(event, 'spot'), clientToken(event, 'spot', ['i-0a']), clientToken(event, 'spot', ['i-0a', 'i-0b']), clientToken(event, 'on-demand', ['i-0a'])];
    expect(new Set(tokens).size).toBe(tokens.length);
  });
});
