import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { describe, expect, it, vi } from 'vitest';
import { drainDeadline, terminationTimeOf } from './drain-deadline.js';

const now = Date.parse('2024-05-01T12:00:00Z');
const margins = { terminationMarginMs: 10_000, replyMarginMs: 1_000, maxDrainMs: 120_000 };

describe('drainDeadline', () => {
  it('takes the earliest of termination time minus its margin, gRPC deadline minus the reply margin, and the cap', () => {
    const terminationTime = new Date(now + 60_000);
    expect(drainDeadline({ now, callDeadline: new Date(now + 30_000), terminationTime, ...margins })).toBe(now + 29_000);
    expect(drainDeadline({ now, callDeadline: new Date(now + 90_000), terminationTime, ...margins })).toBe(now + 50_000);
    expect(drainDeadline({ now, callDeadline: undefined, terminationTime: undefined, ...margins })).toBe(now + 120_000);
  });

  it('reads the wall-clock deadline and termination time on a clock behind the wall by wallAheadMs (a step since start)', () => {
    const ahead = 2 * 60 * 60 * 1000;
    // The wall clock reads now + ahead: the call has 30 s and the instance 60 s, whatever the step.
    const wall = (ms: number): Date => new Date(now + ahead + ms);
    expect(drainDeadline({ now, callDeadline: wall(30_000), terminationTime: wall(60_000), ...margins, wallAheadMs: ahead })).toBe(now + 29_000);
    expect(drainDeadline({ now, callDeadline: wall(90_000), terminationTime: wall(60_000), ...margins, wallAheadMs: ahead })).toBe(now + 50_000);
  });

  it('reads the termination time label and rejects one that is not RFC 3339', () => {
    expect(terminationTimeOf({ termination_time: '2024-05-01T12:02:00Z' }, 'termination_time')).toEqual(new Date(now + 120_000));
    expect(terminationTimeOf({}, 'termination_time')).toBeUndefined();
    expect(() => terminationTimeOf({ termination_time: 'soon' }, 'termination_time')).toThrow(
      new PluginError(Code.InvalidArgument, 'label termination_time="soon" is not an RFC 3339 time'),
    );
    // Times JavaScript reads but RFC 3339 does not allow: a date alone, a time without its date first, a number.
    for (const value of ['2024-05-01', 'on 2024-05-01T12:02:00Z', 'May 1, 2024 12:02:00 UTC', '1714564920000']) {
      expect(() => terminationTimeOf({ termination_time: value }, 'termination_time')).toThrow(/is not an RFC 3339 time/);
    }
  });

  it("reads a time without an offset as UTC, not as the host's local time (hours early east of UTC: no time left to drain)", () => {
    vi.stubEnv('TZ', 'Asia/Tokyo');
    try {
      expect(terminationTimeOf({ termination_time: '2024-05-01T12:02:00' }, 'termination_time')).toEqual(new Date(now + 120_000));
      expect(terminationTimeOf({ termination_time: '2024-05-01t12:02:00.250' }, 'termination_time')).toEqual(new Date(now + 120_250));
    } finally {
      vi.unstubAllEnvs();
    }
    // With an offset, as before: lower case T and Z, fractions of a second, any offset.
    expect(terminationTimeOf({ termination_time: '2024-05-01t12:02:00.250z' }, 'termination_time')).toEqual(new Date(now + 120_250));
    expect(terminationTimeOf({ termination_time: '2024-05-01T14:02:00+02:00' }, 'termination_time')).toEqual(new Date(now + 120_000));
  });
});
