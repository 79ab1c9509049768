import { Code, PluginError } from './errors.js';

/**
 * How close to its deadline a cancelled call counts as having run out of time.
 * gRPC carries no reason with a cancel: a client whose deadline passes resets
 * the stream just as one that gives up, and that reset can reach the plugin
 * before the plugin's own copy of the deadline passes, by as long as the plugin
 * took to read the request (its deadline starts then). That lag is a few ms on
 * an idle loopback and tens of ms under load; a real cancel this close to the
 * deadline is rare, and the handler's work had run out of time all the same.
 */
export const DEADLINE_TOLERANCE_MS = 250;

/**
 * The reason a pending call's AbortSignal gets when grpc-js reports the call
 * cancelled at `nowMs`: DEADLINE_EXCEEDED when its deadline (`deadlineMs`,
 * Infinity for none) has passed or is within {@link DEADLINE_TOLERANCE_MS},
 * CANCELLED otherwise.
 */
export function cancelReason(deadlineMs: number, nowMs: number): PluginError {
  return deadlineMs - nowMs <= DEADLINE_TOLERANCE_MS
    ? new PluginError(Code.DeadlineExceeded, 'deadline exceeded')
    : new PluginError(Code.Canceled, 'call cancelled by the client');
}
