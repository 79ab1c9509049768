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
 * Heap per Lease of `state.backend: kubernetes` while a sweep's list holds them all (measured: 1.1 KiB
 * each, 20,000 Leases listed by the real client from the kube-apiserver stand-in), with the record,
 * the version seen and the cache entry kept of each.
 */
const PER_LEASE_BYTES = 1536;

/**
 * The most memory senders can make core hold within its configuration's limits: the bodies of
 * `maxConcurrentRequests` requests being read at once (each up to `maxBodyBytes`, as Buffers),
 * the events of queued and running runs (`state.maxQueuedBytes`), and `state.maxGroups` groups;
 * with the `kubernetes` backend, also every replica's Leases (`replicas` x `maxGroups`), which each
 * sweep lists at once.
 */
export function coreMemoryBudget(config: Pick<Config, 'server' | 'state'>, replicas: number): number {
  const { limits } = config.server;
  const { state } = config;
  const leases = state.backend === 'kubernetes' ? PER_LEASE_BYTES * replicas * state.maxGroups : 0;
  return BASELINE_BYTES + limits.maxConcurrentRequests * limits.maxBodyBytes + PER_QUEUED_BYTE * state.maxQueuedBytes + PER_GROUP_BYTES * state.maxGroups + leases;
}
