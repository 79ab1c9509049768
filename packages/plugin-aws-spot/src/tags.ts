import type { InstanceInfo } from './instance-lookup.js';

/** Set on a fleet replacement: the id of the instance it replaces. Also how a repeat is recognised. */
export const REPLACES_TAG = 'hollowtrees:replaces';

/** Set on an instance before it is detached from its group: the group's name. Recognises a repeat. */
export const DETACHED_FROM_TAG = 'hollowtrees:detached-from';

/**
 * Set on an Auto Scaling group before a detach lowers its MinSize: the original
 * MinSize. Removed once MinSize is restored; found on entry, it means a restore
 * did not happen, in this process or another.
 */
export const ORIGINAL_MIN_SIZE_TAG = 'hollowtrees:original-min-size';

/** Auto Scaling's own tag on its instances; it stays on after a detach. */
export const AUTO_SCALING_GROUP_TAG = 'aws:autoscaling:groupName';

/** Keys in this namespace belong to AWS: EC2 refuses them in a request. */
const RESERVED_PREFIX = 'aws:';

/** This plugin's tags that tell an instance's own history: a replacement starts without them. */
const HISTORY_TAGS: ReadonlySet<string> = new Set([REPLACES_TAG, DETACHED_FROM_TAG]);

/** EC2's limit of user tags on one resource; a request for more is refused whole (`TagLimitExceeded`). */
export const EC2_TAG_LIMIT = 50;

/** The tags a replacement launches with, and the old instance's that did not fit under {@link EC2_TAG_LIMIT}. */
export interface ReplacementTags {
  readonly tags: { Key: string; Value: string }[];
  /** Keys of the old instance's tags left out: it had EC2's 50, and {@link REPLACES_TAG} takes one place. */
  readonly leftOut: readonly string[];
}

/** Namespaced keys (`kubernetes.io/cluster/prod`, `eks:cluster-name`) are read by machines, e.g. as the pool tag: they are kept first. */
const namespaced = (key: string): boolean => key.includes('/') || key.includes(':');

/**
 * Tags for the replacement of `instance`: its own user tags, by key, plus {@link REPLACES_TAG}.
 * Not {@link DETACHED_FROM_TAG}: a replacement carrying it would be taken for a member
 * already detached, and its own reclaim left without a replacement. An instance with EC2's 50 user
 * tags has one left out (the last plain key), or every replacement of it would be refused.
 */
export function replacementTags(instance: InstanceInfo): ReplacementTags {
  const byKey = ([a]: readonly [string, string], [b]: readonly [string, string]): number => (a < b ? -1 : a > b ? 1 : 0);
  const copied = Object.entries(instance.tags).filter(([key]) => !key.toLowerCase().startsWith(RESERVED_PREFIX) && !HISTORY_TAGS.has(key));
  const fit = copied.sort((a, b) => Number(namespaced(b[0])) - Number(namespaced(a[0])) || byKey(a, b)).slice(0, EC2_TAG_LIMIT - 1);
  const kept = new Set(fit.map(([key]) => key));
  // In key order whatever order EC2 listed them in, the replaces tag last: a request re-sent with its client token must carry the same parameters.
  const tags = [...fit.sort(byKey), [REPLACES_TAG, instance.instanceId] as const].map(([Key, Value]) => ({ Key, Value }));
  return { tags, leftOut: copied.filter(([key]) => !kept.has(key)).map(([key]) => key).sort() };
}
