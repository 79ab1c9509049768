import { steadyClock, systemClock, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import type { StateBackend } from './run-state-store.js';

/**
 * The clock that run state is timed on (cooldowns, retry waits, run times) for `backend`, the one
 * `state.backend` names (memory under `--dry-run`).
 *
 * Memory and the journal: {@link steadyClock}, so that a step of the wall clock (NTP after a VM
 * resumed, `date -s`) neither ends a cooldown early, and a re-sent alert acts twice, nor stretches it.
 * The journal is read back by this process's successor, on its wall clock: it is written in wall-clock
 * times ({@link wallAheadOf}).
 *
 * Kubernetes: {@link systemClock}. Every replica compares the cooldown ends and renewals in the
 * Leases with its own clock, and the wall clock is the one they share.
 */
export function runStateClock(backend: StateBackend): Clock {
  return backend === 'kubernetes' ? systemClock : steadyClock;
}

/**
 * How far the wall clock is ahead of `clock` now, for times written where another process reads them on
 * its wall clock: the steps of the wall clock since this process started, on {@link steadyClock}; none on
 * any other clock (the system's, or a test's).
 */
export function wallAheadOf(clock: Clock): () => number {
  return clock === steadyClock ? () => Date.now() - steadyClock.now() : () => 0;
}
