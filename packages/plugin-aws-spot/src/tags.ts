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

/**
 * Tags for the replacement of `instance`: its own user tags, by key, plus {@link REPLACES_TAG}.
 * Not {@link DETACHED_FROM_TAG}: a replacement carrying it would be taken for a member
 * already detached, and its own reclaim left without a replacement.
 */
export function replacementTags(instance: InstanceInfo): { Key: string; Value: string }[] {
  const copied = Object.entries(instance.tags)
    .filter(([key]) => !key.toLowerCase().startsWith(RESERVED_PREFIX) && !HISTORY_TAGS.has(key))
    // In one order whatever order EC2 listed them in: a request re-sent with its client token must carry the same parameters.
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [...copied, [REPLACES_TAG, instance.instanceId] as const].map(([Key, Value]) => ({ Key, Value }));
}
