import { steadyClock, systemClock, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import type { StateBackend } from './run-state-store.js';

/**
 * The clock that run state is timed on (cooldowns, retry waits, run times) for `backend`, the one
 * `state.backend` names (memory under `--dry-run`).
 *
 * Memory and the journal: {@link steadyClock}, so that a step of the wall clock (NTP after a VM
 * resumed, `date -s`) neither ends a cooldown early, and a re-sent alert acts twice, nor stretches it.
 * The journal is read back by this process's successor only, at its start: a step since this one
 * started shifts the times written by it, which the successor reads on the wall clock as any other.
 *
 * Kubernetes: {@link systemClock}. Every replica compares the cooldown ends and renewals in the
 * Leases with its own clock, and the wall clock is the one they share.
 */
export function runStateClock(backend: StateBackend): Clock {
  return backend === 'kubernetes' ? systemClock : steadyClock;
}
