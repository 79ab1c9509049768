import type { Config } from '@hollowtrees/core';

/** What the journal appends before it is rewritten with only the live states (README, "The journal protects itself"). */
const APPENDED_BEFORE_REWRITE = 64 * 1024 ** 2;
/** Journal bytes per group held, its cooldown's record (README: 250,000 cooling groups take 42 MiB), with room to spare. */
const PER_GROUP_BYTES = 256;

/**
 * The most disk `state.file`'s directory can need: the journal at its largest, the rewrite's temporary
 * file of the live states beside it, and the `.unreadable` copy of a journal that had a bad line, as
 * large as the journal. The live states are every queued or running run's event, written whole (as
 * many bytes as `state.maxQueuedBytes` counts: measured 66.5 MB of journal for 66.6 MB counted), and a
 * record per group; the journal holds them and what was appended since the last rewrite: up to 64 MiB,
 * and the one write that passed it, which can carry a whole `maxQueuedBytes` of new runs.
 */
export function journalDiskBudget(config: Pick<Config, 'state'>): number {
  const live = config.state.maxQueuedBytes + PER_GROUP_BYTES * config.state.maxGroups;
  const journal = live + APPENDED_BEFORE_REWRITE + config.state.maxQueuedBytes;
  return journal + live + journal;
}
