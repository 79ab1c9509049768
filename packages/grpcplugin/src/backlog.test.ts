import { describe, expect, it } from 'vitest';
import { Backlog } from './backlog.js';

function drain<T>(backlog: Backlog<T>): Array<[number, T]> {
  const out: Array<[number, T]> = [];
  for (let next = backlog.shift(); next; next = backlog.shift()) out.push([next.id, next.entry]);
  return out;
}

describe('Backlog', () => {
  it('gives entries back in arrival order, skipping those taken out by id', () => {
    const backlog = new Backlog<string>();
    for (const id of [5, 1, 9, 3]) backlog.push(id, `call ${id}`);
    expect(backlog.delete(9)).toBe(true);
    expect(backlog.delete(9)).toBe(false);
    expect([backlog.size, backlog.has(1), backlog.has(9)]).toEqual([3, true, false]);
    expect(drain(backlog)).toEqual([[5, 'call 5'], [1, 'call 1'], [3, 'call 3']]);
    expect(backlog.size).toBe(0);
  });

  it('keeps its order across many entries added and taken, with some taken out by id', () => {
    const backlog = new Backlog<number>();
    const shifted: number[] = [];
    for (let id = 0; id < 20_000; id++) {
      backlog.push(id, id);
      // Taken out by id two after it arrived, before its turn came (one is taken per three added).
      if (id % 7 === 3) expect(backlog.delete(id - 2)).toBe(true);
      if (id % 3 === 0) shifted.push(backlog.shift()!.id);
    }
    // Every id once, in order, but the ones taken out by id.
    expect([...shifted, ...drain(backlog).map(([id]) => id)]).toEqual([...Array(20_000).keys()].filter((id) => id % 7 !== 1));
    backlog.push(1, 1);
    backlog.clear();
    expect([backlog.size, backlog.shift()]).toEqual([0, undefined]);
  });
});
