import { createHash } from 'node:crypto';

/** The clouds the watcher knows. */
export const CLOUDS = ['aws', 'gcp', 'azure'] as const;
/** One of {@link CLOUDS}. */
export type CloudName = (typeof CLOUDS)[number];

/** What the metadata service says about the instance the watcher runs on. */
export interface InstanceIdentity {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly region: string;
  /** Further labels a cloud adds (Azure: `vm_name`). */
  readonly extraLabels?: Readonly<Record<string, string>>;
}

/** One notice the metadata service announced: what is coming and when. */
export interface Notice {
  /** The event type's last segment, e.g. `spot-interruption` (see the README's table). */
  readonly kind: string;
  /** Stable for one notice: the cloud's event id, or a hash of what identifies the notice. */
  readonly id: string;
  /** When the instance goes away (RFC 3339), when the notice says. */
  readonly terminationTime?: string;
  /** Labels of this kind of notice (e.g. `instance_action`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** The notice as the metadata service wrote it. */
  readonly detail: unknown;
}

/**
 * A notice id from the parts that identify it: the same notice seen again (on the next poll, or
 * after the watcher restarted) gets the same id, so core deduplicates its re-sends.
 */
export function noticeId(...parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32);
}

/** An RFC 3339 time in UTC for a time the metadata service wrote in another form (RFC 1123), or undefined when it is none. */
export function rfc3339(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}
