import { createHash } from 'node:crypto';
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { z } from 'zod';
import type { RunProgress } from '../flow/group-states.js';
import { runEvent, runPlace, runWait } from './journal-format.js';

/** Labels on every Lease of the kubernetes backend that plays `role`, so a list of that role finds them and nothing else. */
export const backendLabels = (role: string): Readonly<Record<string, string>> => Object.freeze({ 'app.kubernetes.io/managed-by': 'hollowtrees', 'hollowtrees.io/role': role });

/** The label selector that lists the Leases carrying `labels`. */
export const selectorOf = (labels: Readonly<Record<string, string>>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** Labels on every Lease of run state. */
export const LEASE_LABELS = backendLabels('run-state');
export const LEASE_SELECTOR = selectorOf(LEASE_LABELS);

/** Annotations that name a run: its group (a group key can be any length and any text, so it is no name or label), flow and event. */
export const RUN_ANNOTATIONS = {
  key: 'hollowtrees.io/group-key',
  flow: 'hollowtrees.io/flow',
  eventId: 'hollowtrees.io/event-id',
} as const;

/** Annotations that carry a group's run state. */
const A = {
  ...RUN_ANNOTATIONS,
  phase: 'hollowtrees.io/phase',
  since: 'hollowtrees.io/since',
  until: 'hollowtrees.io/cooldown-until',
  place: 'hollowtrees.io/run-place',
  event: 'hollowtrees.io/run-event',
  claim: 'hollowtrees.io/claim',
} as const;

/**
 * How far a run got: what a replica that takes its Lease over needs to go on after the plugins
 * that already acted, rather than call them again (the file journal keeps the same of a run).
 */
export type LeasePlace = Pick<RunProgress, 'next' | 'at' | 'attributes' | 'attempt' | 'restarts' | 'retryAt'> & {
  /**
   * The run was waiting for its next try (due at `retryAt`; in the Lease, on its holder's wall clock), calling nothing: going on with it
   * is no restart of it. Written beside `retryAt` for the replicas of an older version in a rolling update, which read it alone.
   */
  waiting?: true;
};

// Members a later version adds are ignored, not a reason to drop the place: in a rolling update an older replica that
// could not read it would run the group from its start, calling again the plugins that acted.
const placeSchema = z.object({ ...runPlace, ...runWait, waiting: z.literal(true).optional() });

/**
 * The most bytes of UTF-8 a place takes as JSON in its Lease, whose annotations the API server bounds at
 * 256 KiB in all, counted in bytes (the group key, up to 8 Ki characters, is there twice, the event beside it).
 * Plugins' attributes are the bulk. Counted in characters, a place and an event beyond ASCII each passed at
 * up to three times this, and every write of the Lease was then refused (422).
 */
export const MAX_PLACE_BYTES = 64 * 1024;

/** True when `text` takes at most `bytes` bytes of UTF-8; a text of more characters than that is over without counting (each takes a byte at least). */
const fitsIn = (text: string, bytes: number): boolean => text.length <= bytes && Buffer.byteLength(text, 'utf8') <= bytes;

/** The place of `run` as a Lease keeps it, or undefined when it takes more than {@link MAX_PLACE_BYTES}. */
export function placeOf(run: RunProgress): LeasePlace | undefined {
  const { next, at, attributes, attempt, restarts, retryAt } = run;
  const place: LeasePlace = { next, ...(at ? { at } : {}), attributes, attempt, restarts, ...(retryAt === undefined ? {} : { waiting: true as const, retryAt }) };
  return fitsIn(JSON.stringify(place), MAX_PLACE_BYTES) ? place : undefined;
}

/**
 * A run's event and when it was received, kept in its Lease while it runs: a replica that finds the run cut short
 * (handed back at shutdown, or its holder killed) goes on with it by itself, rather than wait for the event to be
 * sent again (an Alertmanager webhook repeats a notification it delivered only after `repeat_interval`, 4h by default).
 */
export type LeaseEvent = Pick<RunProgress, 'event' | 'receivedAt'>;

const eventSchema = z.object(runEvent);

/** The most bytes of UTF-8 an event takes as JSON in its Lease; a run of a larger one, cut short, waits for its group's next event. Bounded as a place is. */
export const MAX_EVENT_BYTES = 64 * 1024;

/**
 * `run`'s event as a Lease keeps it: JSON text, written and read back as it is (a Lease is read at every claim
 * that meets it, the event is parsed only by {@link leaseEventOf}); undefined when it takes more than {@link MAX_EVENT_BYTES}.
 * `ahead`: how far the wall clock is ahead of the run's (`wallAheadOf`), so that its receipt is written on the wall clock.
 */
export function eventOf(run: RunProgress, ahead = 0): string | undefined {
  const kept: LeaseEvent = { event: run.event, receivedAt: run.receivedAt + ahead };
  const text = JSON.stringify(kept);
  return fitsIn(text, MAX_EVENT_BYTES) ? text : undefined;
}

/**
 * The event `record` keeps, when it parses and is the one its run was for (another would start a run of another event in this group);
 * its receipt moved off the wall clock onto this process's, `ahead` behind it (see {@link eventOf}).
 */
export function leaseEventOf(record: LeaseRecord, ahead = 0): LeaseEvent | undefined {
  const kept = parseAnnotation<LeaseEvent>(record.event, eventSchema);
  return kept && leaseEventId(kept.event.id) === record.eventId ? { ...kept, receivedAt: kept.receivedAt - ahead } : undefined;
}

/** What an annotation holds, checked by `schema`; undefined when it does not parse (garbled, or written by something else). */
function parseAnnotation<T>(text: string | undefined, schema: z.ZodType): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? (parsed.data as T) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Lease name of a group: the prefix and 40 hex digits of the key's
 * SHA-256, so it is a DNS subdomain of bounded length whatever the key holds.
 */
export function leaseName(prefix: string, groupKey: string): string {
  return `${prefix}${createHash('sha256').update(groupKey).digest('hex').slice(0, 40)}`;
}

/** The longest event id a Lease keeps as it is. */
export const MAX_EVENT_ID_CHARS = 1_024;

/**
 * An event's id as a Lease keeps it: as it is, or past {@link MAX_EVENT_ID_CHARS} (a CloudEvents id may be
 * any length) `sha256:` and its hex digest, so that the Lease stays within the API server's 256 KiB of
 * annotations. Only compared, never shown back as the event's.
 */
export function leaseEventId(id: string): string {
  return id.length <= MAX_EVENT_ID_CHARS ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`;
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
  /** Running: how far the run got, once it passed a plugin or waits for a retry. */
  place?: LeasePlace;
  /** Running: the run's event as {@link eventOf} wrote it, for a replica that finds the run cut short to go on with it without waiting for the event again. */
  event?: string;
  /** Empty when the run's holder handed it back, cut short by a shutdown: any replica may take it over at once. */
  holder: string;
  /**
   * Names the claim that wrote the Lease, so that its writer knows its own write when it reads it back (an answer lost).
   * `since` cannot tell: read back after a step of the wall clock it is moved by the step. None in the Leases of older versions.
   */
  claim?: string;
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
  if (record.phase === 'cooling') return record.until!;
  return handedBack(record) ? record.renewedAt : record.renewedAt + record.leaseDurationMs;
}

/** A run's Lease its holder gave up at shutdown, keeping its place for whichever replica the group's next event reaches. */
export const handedBack = (record: LeaseRecord): boolean => record.phase === 'running' && record.holder === '';

/** `record` handed back at `now`: no holder, so any replica takes it over at once ({@link handedBack}). */
export const handBack = (record: LeaseRecord, now: number): LeaseRecord => ({ ...record, holder: '', renewedAt: now });

const iso = (ms: number): string => new Date(ms).toISOString();
/** MicroTime wants six fractional digits; the client's V1MicroTime writes them. */
const microTime = (ms: number): Date => new V1MicroTime(ms);
/** The client hands MicroTime back as the string it read (or a Date): either way, ms since epoch. */
const msOf = (value: unknown): number => (value instanceof Date ? value.getTime() : Date.parse(String(value)));

/** `place` with its retry time moved `by` ms (see {@link toLease}). */
const placeMoved = (place: LeasePlace, by: number): LeasePlace => (place.retryAt === undefined || by === 0 ? place : { ...place, retryAt: place.retryAt + by });

/**
 * The Lease for `record` named `name`; `base` carries the resourceVersion an update is guarded by. `ahead`: how far the wall
 * clock is ahead of the clock `record`'s times are on (`wallAheadOf`): the Lease gets wall-clock times, which every replica,
 * and this one's successor, reads on its own wall clock (the one they share), while this process compares them on its steady clock.
 */
export function toLease(name: string, record: LeaseRecord, base?: V1Lease, ahead = 0): V1Lease {
  const wall = (ms: number): number => ms + ahead;
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
        [A.since]: iso(wall(record.since)),
        ...(record.until === undefined ? {} : { [A.until]: iso(wall(record.until)) }),
        ...(record.place === undefined ? {} : { [A.place]: JSON.stringify(placeMoved(record.place, ahead)) }),
        ...(record.event === undefined ? {} : { [A.event]: record.event }),
        ...(record.claim === undefined ? {} : { [A.claim]: record.claim }),
      },
      ...(base?.metadata?.resourceVersion ? { resourceVersion: base.metadata.resourceVersion } : {}),
    },
    spec: {
      holderIdentity: record.holder,
      leaseDurationSeconds: Math.ceil(record.leaseDurationMs / 1000),
      acquireTime: microTime(wall(record.since)),
      renewTime: microTime(wall(record.renewedAt)),
      leaseTransitions: record.transitions,
    },
  };
}

/**
 * The run state a Lease holds, or undefined when it is not one of ours (or was written by something else); its
 * wall-clock times moved onto this process's clock, `ahead` behind the wall clock (see {@link toLease}).
 */
export function fromLease(lease: V1Lease, ahead = 0): LeaseRecord | undefined {
  const a = lease.metadata?.annotations ?? {};
  const phase = a[A.phase];
  const key = a[A.key];
  const flow = a[A.flow];
  if ((phase !== 'running' && phase !== 'cooling') || !key || !flow) return undefined;
  const untilText = a[A.until];
  const until = untilText === undefined ? undefined : Date.parse(untilText) - ahead;
  const placeRead = phase === 'running' ? parseAnnotation<LeasePlace>(a[A.place], placeSchema) : undefined;
  const place = placeRead && placeMoved(placeRead, -ahead);
  const event = phase === 'running' ? a[A.event] : undefined;
  const claim = a[A.claim];
  const record: LeaseRecord = {
    key,
    flow,
    eventId: a[A.eventId] ?? '',
    phase,
    since: Date.parse(a[A.since] ?? '') - ahead,
    ...(until === undefined ? {} : { until }),
    ...(place === undefined ? {} : { place }),
    ...(event === undefined ? {} : { event }),
    holder: lease.spec?.holderIdentity ?? '',
    ...(claim === undefined ? {} : { claim }),
    renewedAt: msOf(lease.spec?.renewTime ?? lease.spec?.acquireTime) - ahead,
    leaseDurationMs: (lease.spec?.leaseDurationSeconds ?? 0) * 1000,
    transitions: lease.spec?.leaseTransitions ?? 0,
  };
  // A time that does not parse would make the Lease hold for ever, or never: treat it as expired, so it is taken over.
  if (!Number.isFinite(record.since)) record.since = 0;
  if (!Number.isFinite(record.renewedAt)) record.renewedAt = 0;
  if (phase === 'cooling' && !Number.isFinite(until)) record.until = 0;
  return record;
}
