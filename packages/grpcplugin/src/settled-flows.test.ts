import { describe, expect, it } from 'vitest';
import { SETTLED_FLOWS_ATTRIBUTE, settledFlowsOf, settledFlowsValue } from './settled-flows.js';

const named = (value: string) => ({ extensions: { [SETTLED_FLOWS_ATTRIBUTE]: { type: 'string' as const, value } } });

describe('the settled flows attribute', () => {
  it('reads back the flows it was written with, a name with a comma or a percent sign too', () => {
    const flows = ['notify', 'drain,now', '100%'];
    expect(settledFlowsValue(flows)).toBe('notify,drain%2Cnow,100%25');
    expect(settledFlowsOf(named(settledFlowsValue(flows)))).toEqual(new Set(flows));
  });

  it('names none when absent, empty, not a string, or takes a name that is not percent-encoding as written', () => {
    expect(settledFlowsOf({})).toBeUndefined();
    expect(settledFlowsOf(named(''))).toBeUndefined();
    expect(settledFlowsOf({ extensions: { [SETTLED_FLOWS_ATTRIBUTE]: { type: 'integer', value: 1 } } })).toBeUndefined();
    expect(settledFlowsOf(named('a%zz,b'))).toEqual(new Set(['a%zz', 'b']));
  });
});
