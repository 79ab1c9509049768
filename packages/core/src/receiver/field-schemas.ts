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

/**
 * A label or annotation map: string values only, as Prometheus sends them. `rewrite` (an alert's
 * Alertmanager-compatible reading of null and empty values) runs after the `__proto__` check, so
 * such a key is refused whatever its value, even one `rewrite` would drop.
 */
export function stringMapSchema(rewrite: (map: unknown) => unknown = (map) => map) {
  return refusingProtoKey(z.preprocess(rewrite, z.record(z.string(), z.string({ error: STRING_VALUE }))), (value) =>
    typeof value === 'string' || value === null ? 'the name "__proto__" is reserved' : STRING_VALUE,
  );
}

/** Label and annotation maps as written (every event's `data.labels`): string values only. */
export const stringMap = stringMapSchema();

/** RFC 3339 within a protobuf Timestamp's range: one schema for every source's times (the SQS source's too). */
export { rfc3339Time as time } from '../time-schema.js';

