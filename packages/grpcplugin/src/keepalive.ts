import { checkedTimerMs } from './timer-limit.js';

/**
 * HTTP/2 pings on a connection, so one that a NAT or load balancer dropped without a word is
 * noticed: each `timeMs` a ping, and the connection is closed when no answer came within
 * `timeoutMs`. Without them it is noticed only when the kernel gives up retransmitting, after
 * about 15 minutes, longer than a cloud's notice of a reclaim.
 */
export interface KeepaliveOptions {
  /** Time between pings, in ms. */
  timeMs: number;
  /** How long a ping may go unanswered before the connection is taken for dead, in ms. */
  timeoutMs: number;
}

/** What the client and `serve()` ping with unless told otherwise: a dropped connection is noticed within 40 s. */
export const DEFAULT_KEEPALIVE: Readonly<KeepaliveOptions> = { timeMs: 30_000, timeoutMs: 10_000 };

/**
 * grpc-js' channel and server options for `keepalive` (`false`: no pings); a RangeError naming
 * `what` for a time that is not a whole number of ms from 1 to 2^31-1 (grpc-js takes 0 for
 * "never", and a timer fires a longer one at once).
 */
export function keepaliveChannelOptions(what: string, keepalive: KeepaliveOptions | false = DEFAULT_KEEPALIVE): Record<string, number> {
  if (keepalive === false) return {};
  return { 'grpc.keepalive_time_ms': checkedTimerMs(`${what}.timeMs`, keepalive.timeMs), 'grpc.keepalive_timeout_ms': checkedTimerMs(`${what}.timeoutMs`, keepalive.timeoutMs) };
}
