import type { Config } from '@hollowtrees/core';

const UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 };

/** A Kubernetes memory quantity (`512Mi`, `1Gi`, `1000000`) in bytes. */
export function memoryBytes(quantity: string): number {
  const found = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (!found) throw new Error(`memory quantity "${quantity}" is not one these checks read (a whole number, with Ki, Mi, Gi, k, M or G)`);
  return Number(found[1]) * UNITS[found[2] ?? '']!;
}

/** Core's RSS at rest (79 MiB measured with the base config), with room to spare. */
const BASELINE_BYTES = 128 * 1024 ** 2;
/**
 * RSS per byte of `state.maxQueuedBytes` held by runs that wait on their plugins: the events, and
 * each pending call's request (measured: 64 MiB of queued alerts took core from 79 to 261 MiB, 2.7 each).
 */
const PER_QUEUED_BYTE = 3;
/** RSS per group held (README, "Memory": 100,000 cooling groups take ~145 MiB, the baseline included). */
const PER_GROUP_BYTES = 1024;

/**
 * The most memory senders can make core hold within its configuration's limits: the bodies of
 * `maxConcurrentRequests` requests being read at once (each up to `maxBodyBytes`, as Buffers),
 * the events of queued and running runs (`state.maxQueuedBytes`), and `state.maxGroups` groups.
 */
export function coreMemoryBudget(config: Pick<Config, 'server' | 'state'>): number {
  const { limits } = config.server;
  return BASELINE_BYTES + limits.maxConcurrentRequests * limits.maxBodyBytes + PER_QUEUED_BYTE * config.state.maxQueuedBytes + PER_GROUP_BYTES * config.state.maxGroups;
}
