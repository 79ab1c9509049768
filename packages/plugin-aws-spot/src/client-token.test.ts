import { describe, expect, it } from 'vitest';
import { clientToken, eventScope, instanceScope } from './client-token.js';

const event = { source: 'test', id: 'evt-1' };

describe('clientToken', () => {
  it('is the same for the same scope, purpose and replacements gone, in any order, and fits EC2’s 64 characters', () => {
    expect(clientToken(eventScope(event), 'spot')).toBe(clientToken(eventScope({ ...event }), 'spot', []));
    expect(clientToken(eventScope(event), 'spot', ['i-0b', 'i-0a'])).toBe(clientToken(eventScope(event), 'spot', ['i-0a', 'i-0b']));
    expect(clientToken(eventScope(event), 'spot')).toMatch(/^hollowtrees-[0-9a-f]{40}$/);
  });

  it('changes with each replacement gone, so a retry does not get a dead replacement’s fleet back', () => {
    const scope = eventScope(event);
    const tokens = [clientToken(scope, 'spot'), clientToken(scope, 'spot', ['i-0a']), clientToken(scope, 'spot', ['i-0a', 'i-0b']), clientToken(scope, 'on-demand', ['i-0a'])];
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('is one per instance whichever event asks, and differs between instances and from an event’s', () => {
    expect(clientToken(instanceScope('i-0a'), 'spot')).toBe(clientToken(instanceScope('i-0a'), 'spot'));
    const tokens = [clientToken(instanceScope('i-0a'), 'spot'), clientToken(instanceScope('i-0b'), 'spot'), clientToken(eventScope({ source: 'replacement of i-0a', id: '' }), 'spot')];
    expect(new Set(tokens).size).toBe(tokens.length);
  });
});
