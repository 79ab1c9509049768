import { utimesSync } from 'node:fs';

/**
 * How long ago the lock is made to look last refreshed: past the 4 s a start waits for a dead holder's lock on this host to
 * go unrefreshed (state-lock.ts, QUIET_MS), short of the 10 s after which any holder's lock is stale.
 */
const AGE_MS = 6_000;

/**
 * Makes the lock a core killed with -9 left on `stateFile` look as it does once the quiet time a start waits for has passed,
 * so the next start takes it over at once instead of waiting it out (2-4 s a restart). The start still goes the way of a
 * killed holder's lock: held, its pid dead here, unrefreshed. That wait itself is shown by state-lock.test.ts and by
 * lifecycle.test.ts's first kill -9 test, which leave the lock as it was.
 */
export function ageKilledHolderLock(stateFile: string): void {
  const past = new Date(Date.now() - AGE_MS);
  utimesSync(`${stateFile}.lock`, past, past);
}
