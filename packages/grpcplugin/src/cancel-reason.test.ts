import { describe, expect, it } from 'vitest';
import { DEADLINE_TOLERANCE_MS, cancelReason } from './cancel-reason.js';
import { Code } from './errors.js';

describe('cancelReason', () => {
  const now = 1_000_000;

  it.each([
    ['after the deadline', now - 5],
    ['at the deadline', now],
    [`${DEADLINE_TOLERANCE_MS} ms before the deadline`, now + DEADLINE_TOLERANCE_MS],
  ])('a cancel %s is DEADLINE_EXCEEDED', (_when, deadline) => {
    expect(cancelReason(deadline, now)).toMatchObject({ code: Code.DeadlineExceeded, message: 'deadline exceeded' });
  });

  it.each([
    [`${DEADLINE_TOLERANCE_MS + 1} ms before the deadline`, now + DEADLINE_TOLERANCE_MS + 1],
    ['of a call without a deadline', Infinity],
  ])('a cancel %s is CANCELLED', (_when, deadline) => {
    expect(cancelReason(deadline, now)).toMatchObject({ code: Code.Canceled, message: 'call cancelled by the client' });
  });
});
