import type { V1Node } from '@kubernetes/client-node';
import { annotationObject } from './annotation-json.js';
import type { PoolCordon, PoolMemory } from './pool-registry.js';

/**
 * The node annotation a pool drain writes in its cordon patch: which pool's drain cordoned the node,
 * for the surge of what time, the node object's uid, and whether the node was unschedulable before. The plugin's memory of its
 * cordons dies with the process; this record lets a resolution after a restart undo exactly those
 * cordons. An uncordon, a per-instance drain taking the node over, and the node's drain ending
 * remove it.
 */
export const POOL_CORDON_ANNOTATION = 'hollowtrees.io/pool-cordon';

interface Recorded {
  pool: string;
  /** ISO 8601; absent from the records of versions before it. */
  surgeAt?: string;
  uid: string | undefined;
  wasUnschedulable: boolean;
}

/** Who holds a pool cordon: the key of the pool whose drain made it, and the time (epoch milliseconds) of the surge that drain is for. */
export interface PoolClaim {
  readonly pool: string;
  readonly surgeAt: number;
}

/** A resolution of a pool's surges: the pool's key, and the time (epoch milliseconds) up to which its surges are over. */
export interface PoolResolution {
  readonly pool: string;
  readonly resolvedAt: number;
}

/**
 * The annotation's value for a cordon of `node` by a drain for `claim`; `wasUnschedulable` is the node's
 * `unschedulable` before the cordon (by default as the node is now: before the cordon patch).
 */
export function poolCordonRecord(claim: PoolClaim, node: V1Node, wasUnschedulable = node.spec?.unschedulable === true): string {
  const recorded: Recorded = { pool: claim.pool, surgeAt: new Date(claim.surgeAt).toISOString(), uid: node.metadata?.uid, wasUnschedulable };
  return JSON.stringify(recorded);
}

/**
 * Whether a resolution at `resolvedAt` must leave the cordon: it was made (or taken over) for a later
 * surge, which is not over. A cordon of unknown surge (an earlier version's record) is any resolution's to undo.
 */
export const heldForNewerSurge = (cordon: Pick<PoolCordon, 'surgeAt'>, resolvedAt: number): boolean => (cordon.surgeAt ?? -Infinity) > resolvedAt;

/** Whether the node carries a pool cordon record (of any pool, readable or not). */
export const hasPoolCordonRecord = (node: V1Node): boolean => node.metadata?.annotations?.[POOL_CORDON_ANNOTATION] !== undefined;

/**
 * The cordon the node's record says a drain of the pool keyed `pool` made (with the time of its surge, when
 * the record gives one), or undefined when it has none, names another pool or another node object (its uid),
 * or is not one this plugin wrote
 * (anyone can edit an annotation: such a node is left as it is).
 */
export function recordedPoolCordon(node: V1Node, pool: string): PoolCordon | undefined {
  const value = annotationObject(node.metadata, POOL_CORDON_ANNOTATION);
  if (value === undefined) return undefined;
  const { pool: recordedPool, surgeAt, uid, wasUnschedulable } = value as Partial<Record<keyof Recorded, unknown>>;
  if (recordedPool !== pool || typeof wasUnschedulable !== 'boolean' || uid !== node.metadata?.uid) return undefined;
  if (surgeAt === undefined) return { uid: node.metadata?.uid, wasUnschedulable };
  const at = typeof surgeAt === 'string' ? Date.parse(surgeAt) : NaN;
  return Number.isNaN(at) ? undefined : { uid: node.metadata?.uid, wasUnschedulable, surgeAt: at };
}

/**
 * Adds `node` to the pool's memory of the cordons its drains made when the node records one (see
 * {@link recordedPoolCordon}) that the memory lacks: one made before this process began.
 */
export function rememberRecordedCordon(memory: PoolMemory, node: V1Node, pool: string): void {
  const recorded = recordedPoolCordon(node, pool);
  const name = node.metadata?.name ?? '';
  if (recorded && memory.cordoned.get(name)?.uid !== recorded.uid) memory.cordoned.set(name, { ...recorded, recordedFor: pool });
}
