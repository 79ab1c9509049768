import { createHash } from 'node:crypto';
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';

/** Labels on every Lease of the kubernetes backend, so a list finds them and nothing else. */
export const LEASE_LABELS: Readonly<Record<string, string>> = Object.freeze({ 'app.kubernetes.io/managed-by': 'hollowtrees', 'hollowtrees.io/role': 'run-state' });
export const LEASE_SELECTOR = Object.entries(LEASE_LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

/** Annotations that carry a group's run state (a group key can be any length and any text, so it is no name or label). */
const A = {
  key: 'hollowtrees.io/group-key',
  flow: 'hollowtrees.io/flow',
  eventId: 'hollowtrees.io/event-id',
  phase: 'hollowtrees.io/phase',
  since: 'hollowtrees.io/since',
  until: 'hollowtrees.io/cooldown-until',
} as const;

/**
 * The Lease name of a group: the prefix and 40 hex digits of the key's
 * SHA-256, so it is a DNS subdomain of bounded length whatever the key holds.
 */
export function leaseName(prefix: string, groupKey: string): string {
  return `${prefix}${createHash('sha256').update(groupKey).digest('hex').slice(0, 40)}`;
}

/** A group's state as one Lease holds it. */
export interface LeaseRecord {
  key: string;
  flow: string;
  eventId: string;
  /** `running` while a run (or its wait for a retry) is in progress and renewed; `cooling` after success. */
  phase: 'running' | 'cooling';
  /** When the run started (running) or finished (cooling), ms since epoch. */
  since: number;
  /** End of the cooldown, ms since epoch. */
  until?: number;
  holder: string;
  /** Last renewal, ms since epoch. */
  renewedAt: number;
  leaseDurationMs: number;
  transitions: number;
}

/**
 * Until when a Lease holds its group: the end of its cooldown, or its last
 * renewal plus its duration while a run is in progress (after which the run's
 * holder is taken to have stopped).
 */
export function heldUntil(record: LeaseRecord): number {
  return record.phase === 'cooling' ? record.until! : record.renewedAt + record.leaseDurationMs;
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** MicroTime wants six fractional digits; the client's V1MicroTime writes them. */
const microTime = (ms: number): Date => new V1MicroTime(ms);
/** The client hands MicroTime back as the string it read (or a Date): either way, ms since epoch. */
const msOf = (value: unknown): number => (value instanceof Date ? value.getTime() : Date.parse(String(value)));

/** The Lease for `record` named `name`; `base` carries the resourceVersion an update is guarded by. */
export function toLease(name: string, record: LeaseRecord, base?: V1Lease): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      labels: { ...LEASE_LABELS },
      annotations: {
        [A.key]: record.key,
        [A.flow]: record.flow,
        [A.eventId]: record.eventId,
        [A.phase]: record.phase,
        [A.since]: iso(record.since),
        ...(record.until === undefined ? {} : { [A.until]: iso(record.until) }),
      },
      ...(base?.metadata?.resourceVersion ? { resourceVersion: base.metadata.resourceVersion } : {}),
    },
    spec: {
      holderIdentity: record.holder,
      leaseDurationSeconds: Math.ceil(record.leaseDurationMs / 1000),
      acquireTime: microTime(record.since),
      renewTime: microTime(record.renewedAt),
      leaseTransitions: record.transitions,
    },
  };
}

/** The run state a Lease holds, or undefined when it is not one of ours (or was written by something else). */
export function fromLease(lease: V1Lease): LeaseRecord | undefined {
  const a = lease.metadata?.annotations ?? {};
  const phase = a[A.phase];
  const key = a[A.key];
  const flow = a[A.flow];
  if ((phase !== 'running' && phase !== 'cooling') || !key || !flow) return undefined;
  const untilText = a[A.until];
  const until = untilText === undefined ? undefined : Date.parse(untilText);
  const record: LeaseRecord = {
    key,
    flow,
    eventId: a[A.eventId] ?? '',
    phase,
    since: Date.parse(a[A.since] ?? ''),
    ...(until === undefined ? {} : { until }),
    holder: lease.spec?.holderIdentity ?? '',
    renewedAt: msOf(lease.spec?.renewTime ?? lease.spec?.acquireTime),
    leaseDurationMs: (lease.spec?.leaseDurationSeconds ?? 0) * 1000,
    transitions: lease.spec?.leaseTransitions ?? 0,
  };
  // A time that does not parse would make the Lease hold for ever, or never: treat it as expired, so it is taken over.
  if (!Number.isFinite(record.since)) record.since = 0;
  if (!Number.isFinite(record.renewedAt)) record.renewedAt = 0;
  if (phase === 'cooling' && !Number.isFinite(until)) record.until = 0;
  return record;
}
