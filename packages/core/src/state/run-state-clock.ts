import { steadyClock, type Clock } from '@hollowtrees/grpcplugin/without-grpc';

/**
 * The clock that run state is timed on (cooldowns, retry waits, run times), whatever `state.backend`:
 * {@link steadyClock}, so that a step of the wall clock (NTP after a VM resumed, `date -s`) neither ends a
 * cooldown early, and a re-sent alert acts twice, nor stretches it.
 *
 * What leaves the process is moved onto the wall clock by `wallAheadOf` (and what comes in, off it): the journal,
 * read back by this process's successor; the Leases, read by every replica (and by this one's successor) on its own
 * wall clock, the one they share; the status API and the log lines, read by people.
 */
export const runStateClock: Clock = steadyClock;
