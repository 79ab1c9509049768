import type { Timestamp } from './gen/google/protobuf/timestamp.js';

const RFC3339 = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 time keeping nanoseconds, which `Date` would drop. */
export function timestampFromString(value: string): Timestamp {
  const m = RFC3339.exec(value);
  const millis = m ? Date.parse(`${m[1]!.replace(/[t ]/, 'T')}${m[3]!.toUpperCase()}`) : NaN;
  if (!m || Number.isNaN(millis)) throw new RangeError(`not an RFC 3339 time: ${JSON.stringify(value)}`);
  return { seconds: Math.floor(millis / 1000), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/** Formats a protobuf Timestamp as RFC 3339 in UTC, trailing zeros dropped (like Go's RFC3339Nano). */
export function timestampToString(ts: Timestamp): string {
  const base = new Date(ts.seconds * 1000).toISOString().slice(0, 19);
  const fraction = ts.nanos ? `.${String(ts.nanos).padStart(9, '0').replace(/0+$/, '')}` : '';
  return `${base}${fraction}Z`;
}

/** Normalises an RFC 3339 time to the form {@link timestampToString} produces. */
export function normalizeTime(value: string): string {
  return timestampToString(timestampFromString(value));
}
