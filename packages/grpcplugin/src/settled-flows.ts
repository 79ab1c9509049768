import type { CloudEvent } from './cloud-event.js';

/**
 * The CloudEvents extension attribute a sender sets on an event it sends again to name the flows that already acted
 * on it with success: core's flows of those names pass it by (deduplicated), whatever became of their cooldowns
 * meanwhile; every other flow takes it as usual. The node watcher sets it on the re-send of a notice whose run failed.
 */
export const SETTLED_FLOWS_ATTRIBUTE = 'hollowtreessettled';

/** The attribute's value for `flows`: each name percent-encoded (a flow may be named with a comma), joined by commas. */
export function settledFlowsValue(flows: Iterable<string>): string {
  return [...flows].map(encodeURIComponent).join(',');
}

/** A name as {@link settledFlowsValue} wrote it; a sender's name that is not valid percent-encoding is taken as written. */
function decodedName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** The flows an event names in {@link SETTLED_FLOWS_ATTRIBUTE} (a string attribute), or undefined when it names none. */
export function settledFlowsOf(event: Pick<CloudEvent, 'extensions'>): ReadonlySet<string> | undefined {
  const attribute = event.extensions?.[SETTLED_FLOWS_ATTRIBUTE];
  if (attribute?.type !== 'string' || attribute.value === '') return undefined;
  return new Set(attribute.value.split(',').map(decodedName));
}
