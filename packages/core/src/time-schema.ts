import { normalizeTime } from '@hollowtrees/grpcplugin/without-grpc';
import { z } from 'zod';

/** Whether a time fits a protobuf Timestamp, as every event time must to reach a plugin. */
function fitsTimestamp(time: string): boolean {
  try {
    normalizeTime(time);
    return true;
  } catch {
    return false;
  }
}

/** RFC 3339 (zod checks the calendar; any number of fractional digits, kept to nanoseconds) within years 0001-9999 UTC. */
export const rfc3339Time = z.iso
  .datetime({ offset: true, local: false, error: 'expected an RFC 3339 time' })
  // Only once the format passed, so a malformed time gets one message.
  .refine(fitsTimestamp, { message: 'expected an RFC 3339 time between years 0001 and 9999 UTC', when: (payload) => payload.issues.length === 0 });
