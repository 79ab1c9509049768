import { Metadata } from '@grpc/grpc-js';

/**
 * The trailer with which `serve()` marks a unary `Handle` call it refused without starting it, as it shuts down: the
 * unary form of `CallStatus.not_started`. Without it the refusal is a plain UNAVAILABLE, which core retries after a
 * backoff as a new attempt (an attempt spent, though nothing was done); marked, the client sends it again at once, as the
 * same attempt, over a new connection.
 */
const NOT_STARTED_TRAILER = 'hollowtrees-not-started';

/** The trailers of a call refused without being started. */
export function notStartedTrailers(): Metadata {
  const trailers = new Metadata();
  trailers.set(NOT_STARTED_TRAILER, '1');
  return trailers;
}

/** True when a call's trailers mark it refused without being started (a plugin not built with this SDK never does). */
export function markedNotStarted(trailers: Metadata | undefined): boolean {
  return trailers?.get(NOT_STARTED_TRAILER)[0] === '1';
}
