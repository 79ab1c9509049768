import { describe, expect, it } from 'vitest';
import { MAX_DATA_DEPTH, nestedDeeperThan, textNestedDeeperThan } from './json-depth.js';

/** `{"a":{"a":…1…}}` with `levels` objects. */
const nested = (levels: number): unknown => JSON.parse('{"a":'.repeat(levels) + '1' + '}'.repeat(levels));

/** Values, a depth limit, and whether they nest deeper than it: the same answer from the value and from its JSON text. */
const depthCases: Array<[string, unknown, number, boolean]> = [
  ['a scalar', 1, 0, false],
  ['an empty object', {}, 0, true],
  ['an empty object', {}, 1, false],
  ['three levels of objects', nested(3), 3, false],
  ['three levels of objects', nested(3), 2, true],
  ['arrays count as levels', [[['x']]], 3, false],
  ['arrays count as levels', [[['x']]], 2, true],
  ['the deepest branch decides', { flat: 1, deep: { b: { c: {} } } }, 3, true],
  ['siblings are no levels: more brackets than the limit, none deeper', [[], [], [], []], 2, false],
];

describe('nestedDeeperThan', () => {
  it.each(depthCases)('%s within %d levels: deeper %s', (_name, value, max, deeper) => expect(nestedDeeperThan(value, max)).toBe(deeper));

  it('walks 100,000 levels without overflowing the stack', () => {
    expect(nestedDeeperThan(nested(100_000), MAX_DATA_DEPTH)).toBe(true);
    expect(nestedDeeperThan(nested(MAX_DATA_DEPTH), MAX_DATA_DEPTH)).toBe(false);
  });
});

describe('textNestedDeeperThan', () => {
  it.each(depthCases)('%s, as JSON text, within %d levels: deeper %s', (_name, value, max, deeper) => expect(textNestedDeeperThan(JSON.stringify(value), max)).toBe(deeper));

  it('brackets inside strings, escaped quotes included, do not count', () => {
    expect(textNestedDeeperThan(JSON.stringify({ a: '[[[{{{', b: 'say \"[[[\"', c: ['"]]]"'] }), 2)).toBe(false);
    expect(textNestedDeeperThan(JSON.stringify({ a: 'x\\', b: [[[]]] }), 3)).toBe(true);
  });
});
