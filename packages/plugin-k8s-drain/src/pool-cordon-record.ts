import type { V1Node } from '@kubernetes/client-node';
import type { PoolCordon, PoolMemory } from './pool-registry.js';

/**
 * The node annotation a pool drain writes in its cordon patch: which pool's drain cordoned the node,
 * the node object's uid, and whether the node was unschedulable before. The plugin's memory of its
 * cordons dies with the process; this record lets a resolution after a restart undo exactly those
 * cordons. An uncordon, a per-instance drain taking the node over, and the node's drain ending
 * remove it.
 */
export const POOL_CORDON_ANNOTATION = 'hollowtrees.io/pool-cordon';

interface Recorded {
  pool: string;
  uid: string | undefined;
  wasUnschedulable: boolean;
}

/** The annotation's value for a cordon of `node` by a drain of the pool keyed `pool`, as the node is before the cordon. */
export function poolCordonRecord(pool: string, node: V1Node): string {
  const recorded: Recorded = { pool, uid: node.metadata?.uid, wasUnschedulable: node.spec?.unschedulable === true };
  return JSON.stringify(recorded);
}

/** Whether the node carries a pool cordon record (of any pool, readable or not). */
export const hasPoolCordonRecord = (node: V1Node): boolean => node.metadata?.annotations?.[POOL_CORDON_ANNOTATION] !== undefined;

/**
 * The cordon the node's record says a drain of the pool keyed `pool` made, or undefined when it
 * has none, names another pool or another node object (its uid), or is not one this plugin wrote
 * (anyone can edit an annotation: such a node is left as it is).
 */
export function recordedPoolCordon(node: V1Node, pool: string): PoolCordon | undefined {
  const text = node.metadata?.annotations?.[POOL_CORDON_ANNOTATION];
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { pool: recordedPool, uid, wasUnschedulable } = value as Partial<Record<keyof Recorded, unknown>>;
  if (recordedPool !== pool || typeof wasUnschedulable !== 'boolean' || uid !== node.metadata?.uid) return undefined;
  return { uid: node.metadata?.uid, wasUnschedulable };
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
