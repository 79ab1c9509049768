import { describe, expect, it } from 'vitest';
import { ListedNotices } from './listed-notices.js';

describe('ListedNotices', () => {
  it('offers a notice at the first read that lists it, and not at the reads that list it again', () => {
    const listed = new ListedNotices();
    expect(listed.relist('spot', ['a'])).toEqual(['a']);
    expect(listed.relist('spot', ['a'])).toEqual([]);
    expect(listed.relist('spot', ['a', 'b'])).toEqual(['b']);
  });

  it('offers a notice again once it left the list and came back', () => {
    const listed = new ListedNotices();
    listed.relist('spot', ['a']);
    expect(listed.relist('spot', [])).toEqual([]);
    expect(listed.relist('spot', ['a'])).toEqual(['a']);
  });

  it('keeps each part of the metadata service apart: one part listing an id says nothing of another', () => {
    const listed = new ListedNotices();
    expect(listed.relist('spot', ['a'])).toEqual(['a']);
    expect(listed.relist('maintenance', ['a'])).toEqual(['a']);
    // The maintenance part's empty list leaves the spot part's as it was.
    expect(listed.relist('maintenance', [])).toEqual([]);
    expect(listed.relist('spot', ['a'])).toEqual([]);
  });

  it('offers a forgotten notice (one that could not be queued) at the next read that lists it, and only it', () => {
    const listed = new ListedNotices();
    listed.relist('spot', ['a', 'b']);
    listed.forget('spot', 'a');
    expect(listed.relist('spot', ['a', 'b'])).toEqual(['a']);
    // Forgetting in a part never read, or in another part, changes nothing there.
    listed.forget('unread', 'a');
    listed.forget('other', 'b');
    expect(listed.relist('spot', ['a', 'b'])).toEqual([]);
  });

  it('an id a read lists twice is offered once', () => {
    expect(new ListedNotices().relist('spot', ['a', 'a'])).toEqual(['a']);
  });
});
