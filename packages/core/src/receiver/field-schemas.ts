import { normalizeTime } from '@hollowtrees/grpcplugin';
import { z } from 'zod';

const STRING_VALUE = 'expected a string value';

/**
 * `schema`, refusing an own `__proto__` key (JSON.parse makes one) whatever its
 * value: zod would drop it silently (assigning it sets the prototype), and
 * JavaScript code further on (core's, a plugin's) could drop it the same way.
 */
export function refusingProtoKey<S extends z.ZodType>(schema: S, message: (value: unknown) => string): z.ZodPreprocess<S, unknown> {
  return z.preprocess((input, ctx) => {
    if (typeof input === 'object' && input !== null && Object.hasOwn(input, '__proto__')) {
      const value: unknown = (input as Record<string, unknown>)['__proto__'];
      ctx.addIssue({ code: 'custom', path: ['__proto__'], input: value, message: message(value) });
    }
    return input;
  }, schema);
}

/** Label and annotation maps (of an alert, of every event's `data.labels`): string values only, as Prometheus sends them. */
export const stringMap = refusingProtoKey(z.record(z.string(), z.string({ error: STRING_VALUE })), (value) => (typeof value === 'string' ? 'the name "__proto__" is reserved' : STRING_VALUE));

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
export const time = z.iso
  .datetime({ offset: true, local: false, error: 'expected an RFC 3339 time' })
  // Only once the format passed, so a malformed time gets one message.
  .refine(fitsTimestamp, { message: 'expected an RFC 3339 time between years 0001 and 9999 UTC', when: (payload) => payload.issues.length === 0 });

