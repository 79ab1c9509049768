import { describe, expect, it } from 'vitest';
import { ExpiringMap } from './expiring-map.js';

describe('ExpiringMap', () => {
  it('gives an entry back until ttlMs after it was set, then forgets it', () => {
    let now = 1_000;
    const map = new ExpiringMap<string, number>(100, () => now);
    map.set('a', 1);
    now += 99;
    expect(map.get('a')).toBe(1);
    now += 1;
    expect(map.get('a')).toBeUndefined();
    expect(map.get('never set')).toBeUndefined();
  });

  it('dropping expired entries on a write keeps the ones still fresh, and a key set again counts from then', () => {
    let now = 0;
    const map = new ExpiringMap<string, string>(100, () => now);
    map.set('old', 'x');
    now = 50;
    map.set('fresh', 'y');
    map.set('again', 'first');
    now = 120;
    // 'old' has expired and is dropped from the front; 'fresh' and 'again' are still within 100 ms.
    map.set('again', 'second');
    map.set('new', 'z');
    expect([map.get('old'), map.get('fresh'), map.get('again'), map.get('new')]).toEqual([undefined, 'y', 'second', 'z']);
    now = 160;
    // 'fresh' was set at 50; 'again' was set again at 120, so it outlives its first time.
    expect([map.get('fresh'), map.get('again')]).toEqual([undefined, 'second']);
  });
});
