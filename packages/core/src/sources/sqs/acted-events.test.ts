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

describe('ActedEvents by flow', () => {
  it('remembers the flows that settled an event, adding to them, until the event is settled as a whole', () => {
    const acted = new ActedEvents();
    acted.addFlows('a', new Set(['replace']));
    acted.addFlows('a', new Set(['drain']));
    expect([...acted.flowsOf('a')].sort()).toEqual(['drain', 'replace']);
    expect(acted.has('a')).toBe(false);
    acted.add(['a']);
    expect(acted.has('a')).toBe(true);
    acted.addFlows('a', new Set(['other']));
    expect(acted.has('a')).toBe(true);
    expect(acted.flowsOf('b').size).toBe(0);
  });

  it('counts events settled by some flows in the same bound, oldest forgotten first', () => {
    const acted = new ActedEvents(2);
    acted.addFlows('a', new Set(['replace']));
    acted.add(['b']);
    acted.addFlows('c', new Set(['replace']));
    expect(acted.flowsOf('a').size).toBe(0);
    expect(acted.has('b')).toBe(true);
    expect(acted.flowsOf('c').has('replace')).toBe(true);
  });

  it('remembers nothing for an event no flow settled, so it takes no place in the bound', () => {
    const acted = new ActedEvents(1);
    acted.add(['a']);
    acted.addFlows('b', new Set());
    expect(acted.has('a')).toBe(true);
  });
});
