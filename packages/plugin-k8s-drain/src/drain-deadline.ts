import { Code, PluginError } from '@hollowtrees/grpcplugin';

/** What bounds a drain; see {@link drainDeadline}. */
export interface DrainDeadlineInputs {
  /** Epoch milliseconds when the call started. */
  now: number;
  /** The gRPC deadline, if the call has one. */
  callDeadline: Date | undefined;
  /** When the instance goes away, if the event says. */
  terminationTime: Date | undefined;
  /** Kept free before the termination time, for the last pods' grace periods. */
  terminationMarginMs: number;
  /** Kept free before the gRPC deadline, so the answer reaches core in time. */
  replyMarginMs: number;
  /** Upper bound when neither the call nor the event sets one. */
  maxDrainMs: number;
  /**
   * How far the wall clock is ahead of the clock `now` is read on (`wallAheadOf`): the call's deadline and the
   * termination time are wall-clock times. Default 0.
   */
  wallAheadMs?: number;
}

/**
 * Epoch milliseconds (on the clock `now` is read on) at which a drain stops and reports what it could not evict:
 * the earliest of the termination time minus its margin, the gRPC deadline
 * minus the time to reply, and `now + maxDrainMs`.
 */
export function drainDeadline(i: DrainDeadlineInputs): number {
  const ahead = i.wallAheadMs ?? 0;
  const bounds = [i.now + i.maxDrainMs];
  if (i.callDeadline) bounds.push(i.callDeadline.getTime() - ahead - i.replyMarginMs);
  if (i.terminationTime) bounds.push(i.terminationTime.getTime() - ahead - i.terminationMarginMs);
  return Math.min(...bounds);
}

/**
 * A date and a time without an offset, which JavaScript reads as the host's local time: read as UTC
 * here, as it was meant on every host in UTC (a container's zone), whatever the host's zone.
 */
const WITHOUT_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/i;

/**
 * The termination time the event carries in label `key` (RFC 3339; without an offset, UTC), if any.
 * @throws PluginError INVALID_ARGUMENT when the label is there but is not a time.
 */
export function terminationTimeOf(labels: Record<string, string>, key: string): Date | undefined {
  const value = labels[key];
  if (value === undefined) return undefined;
  const time = new Date(WITHOUT_OFFSET.test(value) ? `${value}Z` : value);
  if (!/^\d{4}-\d{2}-\d{2}T/i.test(value) || Number.isNaN(time.getTime())) {
    throw new PluginError(Code.InvalidArgument, `label ${key}="${value}" is not an RFC 3339 time`);
  }
  return time;
}
