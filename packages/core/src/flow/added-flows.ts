import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { FlowConfig } from '../config/schema.js';
import type { AddedFlows } from '../sources/event-source.js';
import { compileMatcher } from './event-matcher.js';

const NEVER = (): boolean => false;

/**
 * The flows of `after` that a reload adds, or keeps under their name with other `allowedEvents` or `filters`, each
 * with a test of whether its version in `before` matched an event: a source hands what it announced once (a surge
 * still open) only to flows that did not match it before, which cannot have acted on it.
 */
export function addedFlows(before: Readonly<Record<string, FlowConfig>>, after: Readonly<Record<string, FlowConfig>>): AddedFlows {
  const added = new Map<string, (event: CloudEvent) => boolean>();
  for (const name of Object.keys(after)) {
    const old = Object.hasOwn(before, name) ? before[name] : undefined;
    if (old === undefined) {
      added.set(name, NEVER);
      continue;
    }
    const now = after[name]!;
    if (JSON.stringify([old.allowedEvents, old.filters]) === JSON.stringify([now.allowedEvents, now.filters])) continue;
    const matchedBefore = compileMatcher(old.allowedEvents, old.filters);
    added.set(name, (event) => matchedBefore(event) === undefined);
  }
  return added;
}
