import type { Timestamp } from './gen/google/protobuf/timestamp.js';
import { rememberingRecent } from './recent-results.js';

/** RFC 3339 allows any number of fractional digits; those past nanoseconds are dropped. */
const RFC3339 = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/** The range of a protobuf Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const MIN_SECONDS = -62_135_596_800;
const MAX_SECONDS = 253_402_300_799;

/**
 * Whether `YYYY-MM-DDTHH:MM:SS` names a real day and time of day. Date.parse takes February 30 or
 * hour 24 and rolls them over into the next month or day, a different instant than was written.
 */
function isCalendarTime(local: string): boolean {
  const asUtc = Date.parse(`${local}Z`);
  return !Number.isNaN(asUtc) && new Date(asUtc).toISOString().slice(0, 19) === local;
}

/**
 * Parses an RFC 3339 time keeping nanoseconds, which `Date` would drop; digits
 * past nanoseconds are truncated. Throws a RangeError for anything else, and for
 * a time outside a protobuf Timestamp's range (years 0001 to 9999 in UTC).
 */
export function timestampFromString(value: string): Timestamp {
  const m = RFC3339.exec(value);
  const local = m ? m[1]!.replace(/[t ]/, 'T') : '';
  const millis = m && isCalendarTime(local) ? Date.parse(`${local}${m[3]!.toUpperCase()}`) : NaN;
  if (!m || Number.isNaN(millis)) throw new RangeError(`not an RFC 3339 time: ${JSON.stringify(value)}`);
  const seconds = Math.floor(millis / 1000);
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) throw new RangeError(`time outside years 0001 to 9999 UTC: ${JSON.stringify(value)}`);
  return { seconds, nanos: Number((m[2] ?? '').slice(0, 9).padEnd(9, '0')) };
}

// The last Timestamp timestampToString formatted, and its text: the events of a wave mostly share their time.
let lastSeconds = NaN;
let lastNanos = NaN;
let lastText = '';

/** Formats a protobuf Timestamp as RFC 3339 in UTC, trailing zeros dropped (like Go's RFC3339Nano). */
export function timestampToString(ts: Timestamp): string {
  if (ts.seconds === lastSeconds && ts.nanos === lastNanos) return lastText;
  const base = new Date(ts.seconds * 1000).toISOString().slice(0, 19);
  const fraction = ts.nanos ? `.${String(ts.nanos).padStart(9, '0').replace(/0+$/, '')}` : '';
  lastSeconds = ts.seconds;
  lastNanos = ts.nanos;
  lastText = `${base}${fraction}Z`;
  return lastText;
}

/** Distinct times remembered by {@link normalizeTime} and {@link timestampFromStringShared}. */
const REMEMBERED_TIMES = 1_024;

/** Normalises an RFC 3339 time to the form {@link timestampToString} produces. */
export const normalizeTime: (value: string) => string = rememberingRecent((value) => timestampToString(timestampFromString(value)), REMEMBERED_TIMES);

/** {@link timestampFromString}, returning one frozen Timestamp per time: for encoders, which only read it. */
export const timestampFromStringShared: (value: string) => Readonly<Timestamp> = rememberingRecent((value) => Object.freeze(timestampFromString(value)), REMEMBERED_TIMES);
