import { describe, expect, it } from 'vitest';
import { ActedEvents } from './acted-events.js';

describe('ActedEvents', () => {
  it('knows a message only when every one of its events was settled here', () => {
    const acted = new ActedEvents();
    acted.add(['a:i-1', 'a:i-2']);
    expect(acted.all(['a:i-1', 'a:i-2'])).toBe(true);
    expect(acted.all(['a:i-1', 'a:i-3'])).toBe(false);
    expect(acted.all([])).toBe(false);
  });

  it('forgets the oldest beyond its bound; one remembered again counts as the newest', () => {
    const acted = new ActedEvents(2);
    acted.add(['a']);
    acted.add(['b']);
    acted.add(['a']);
    acted.add(['c']);
    expect(acted.all(['a'])).toBe(true);
    expect(acted.all(['c'])).toBe(true);
    expect(acted.all(['b'])).toBe(false);
  });
});
