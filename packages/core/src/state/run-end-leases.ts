import type { V1Lease } from '@kubernetes/client-node';
import type { Clock } from '@hollowtrees/grpcplugin/without-grpc';
import type { RunEnd } from '../flow/group-states.js';
import type { ThrottledLog } from '../throttled-log.js';
import { failureText } from './journal-format.js';
import { LeaseRefused, type LeaseApi } from './lease-api.js';
import { backendLabels, leaseEventId, leaseName, RUN_ANNOTATIONS, selectorOf } from './lease-record.js';
import type { SharedRun } from './run-state-store.js';

/**
 * Labels of the Leases that record how runs ended. Not those of run state: a replica's list of groups never meets them,
 * nor does a replica of an older version in a rolling update, which would take them for unreadable run state.
 */
const RUN_END_LABELS = backendLabels('run-end');
const RUN_END_SELECTOR = selectorOf(RUN_END_LABELS);

/** How long a run's end is kept: as long as the node watcher follows a notice's runs. */
export const RUN_END_KEPT_MS = 15 * 60_000;
const A = {
  ...RUN_ANNOTATIONS,
  outcome: 'hollowtrees.io/outcome',
  eventType: 'hollowtrees.io/event-type',
  error: 'hollowtrees.io/error',
  receivedAt: 'hollowtrees.io/received-at',
  startedAt: 'hollowtrees.io/started-at',
  finishedAt: 'hollowtrees.io/finished-at',
} as const;

/** A run's end as a list found it, with its Lease's name. */
interface ListedEnd {
  name: string;
  end: SharedRun;
}

/** What {@link RunEndLeases} needs. */
export interface RunEndLeasesOptions {
  api: LeaseApi;
  leasePrefix: string;
  /** This replica's name, written as the Lease's holder. */
  identity: string;
  clock: Clock;
  /** How far the wall clock is ahead of `clock` (`wallAheadOf`): Leases hold wall-clock times. */
  wallAhead: () => number;
  /** Where a write or list that failed is said, a line of a kind at most every 10 s. */
  log: ThrottledLog;
}

/**
 * The run-end Leases of the kubernetes backend: each replica lists only the runs it made itself, so a follower of an
 * event's runs (the node watcher, which sends a notice again when its run failed, once no other flow's run of it is at
 * work) whose read reaches another replica would never learn how they ended. A run that failed for good, and one that
 * succeeded in a flow with no cooldown (whose group's Lease is deleted as it ends, where a cooldown's Lease says it
 * succeeded), is therefore written to a Lease of its own, named by its group, flow, event and end, kept
 * {@link RUN_END_KEPT_MS}; every replica lists the others' (and those its own earlier process wrote) beside its own
 * runs. Nothing claims them: they are records, not locks.
 */
export class RunEndLeases {
  /** Names of the Leases this process wrote, and when (`clock`): its own runs it lists from memory. */
  private readonly written = new Map<string, number>();
  /** What the last list found, newest first. */
  private listed: ListedEnd[] = [];
  private listing: Promise<void> | undefined;

  constructor(private readonly options: RunEndLeasesOptions) {}

  /** Writes the Lease of a run that ended on this replica; never rejects (a write that fails is logged: followers reading another replica then miss that end). */
  async record(key: string, end: RunEnd, outcome: SharedRun['outcome']): Promise<void> {
    const lease = this.leaseOf(key, end, outcome);
    const name = lease.metadata!.name!;
    this.written.set(name, this.options.clock.now());
    try {
      // Behind the claims of a wave: a record may wait, a claim keeps its sender waiting.
      await this.options.api.create(lease, { record: true });
    } catch (err) {
      // 409: the same end written already (a create whose answer was lost, sent again by the client).
      if (err instanceof LeaseRefused && err.code === 409) return;
      this.options.log.log('run-end write', 'warn', { err, flow: end.flow, eventId: end.eventId, outcome }, 'the Lease recording how a run ended could not be written: a follower of the event reading another replica does not learn of that end', 'alsoUnwrittenSinceLastLine');
    }
  }

  /** The ends the last list found that this process did not record itself, newest first. */
  shared(): SharedRun[] {
    return this.listed.filter(({ name }) => !this.written.has(name)).map(({ end }) => end);
  }

  /** Lists them again, for {@link shared}; never rejects (a list that fails keeps the last one's, and is logged). */
  list(): Promise<void> {
    return this.listOnce(false);
  }

  /** {@link list}, also deleting those kept {@link RUN_END_KEPT_MS}, each only as it was listed. */
  sweep(): Promise<void> {
    return this.listOnce(true);
  }

  /** One list at a time: one asked for while another is in flight shares its answer (the next read lists again). */
  private listOnce(sweep: boolean): Promise<void> {
    // A sweep that meets a read's list in flight deletes nothing this time: the next sweep does.
    if (this.listing) return this.listing;
    const listing = this.listNow(sweep).finally(() => {
      if (this.listing === listing) this.listing = undefined;
    });
    this.listing = listing;
    return listing;
  }

  private async listNow(sweep: boolean): Promise<void> {
    const at = this.options.clock.now();
    let leases: V1Lease[];
    try {
      leases = await this.options.api.list(RUN_END_SELECTOR);
    } catch (err) {
      this.options.log.log('run-end list', 'warn', { err }, 'the Leases recording how runs ended could not be listed: the status API lists the runs of the last list that could', 'alsoUnlistedSinceLastLine');
      return;
    }
    const kept: ListedEnd[] = [];
    for (const lease of leases) {
      const end = this.endOf(lease);
      const name = lease.metadata?.name ?? '';
      // Every installation's Leases carry the same labels: one with another leasePrefix in this namespace is not ours.
      if (!end || name !== this.nameFrom(lease.metadata?.annotations ?? {})) continue;
      if (at - end.finishedAt < RUN_END_KEPT_MS) kept.push({ name, end });
      else if (sweep) {
        const { uid, resourceVersion } = lease.metadata!;
        // Another replica's sweep may have deleted it first (404), or it changed (409): either way it is not this one's to delete.
        await this.options.api.delete(name, { uid: uid!, resourceVersion: resourceVersion! }).catch(() => {});
      }
    }
    // This process's own: forgotten once their Lease is past its time, so the set stays as small as the list.
    for (const [name, writtenAt] of this.written) if (at - writtenAt >= RUN_END_KEPT_MS) this.written.delete(name);
    kept.sort((a, b) => b.end.finishedAt - a.end.finishedAt);
    this.listed = kept;
  }

  private leaseOf(key: string, end: RunEnd, outcome: SharedRun['outcome']): V1Lease {
    const ahead = this.options.wallAhead();
    const iso = (ms: number): string => new Date(ms + ahead).toISOString();
    const annotations: Record<string, string> = {
      [A.key]: key,
      [A.flow]: end.flow,
      [A.eventId]: leaseEventId(end.eventId),
      [A.outcome]: outcome,
      [A.eventType]: failureText(end.eventType),
      ...(end.error === undefined ? {} : { [A.error]: failureText(end.error) }),
      [A.receivedAt]: iso(end.receivedAt),
      [A.startedAt]: iso(end.startedAt),
      [A.finishedAt]: iso(end.finishedAt),
    };
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.nameFrom(annotations), labels: { ...RUN_END_LABELS }, annotations },
      spec: { holderIdentity: this.options.identity },
    };
  }

  /** The end a Lease records, its times moved onto this process's clock; undefined when it is not one (written by something else). */
  private endOf(lease: V1Lease): SharedRun | undefined {
    const a = lease.metadata?.annotations ?? {};
    const ahead = this.options.wallAhead();
    const time = (name: string): number => Date.parse(a[name] ?? '') - ahead;
    const [key, flow, eventId, outcome] = [a[A.key], a[A.flow], a[A.eventId], a[A.outcome]];
    const [receivedAt, startedAt, finishedAt] = [time(A.receivedAt), time(A.startedAt), time(A.finishedAt)];
    if (!key || !flow || eventId === undefined || (outcome !== 'failed' && outcome !== 'succeeded') || ![receivedAt, startedAt, finishedAt].every(Number.isFinite)) return undefined;
    return {
      key,
      outcome,
      flow,
      eventId,
      eventType: a[A.eventType] ?? '',
      ...(a[A.error] === undefined ? {} : { error: a[A.error] }),
      receivedAt,
      startedAt,
      finishedAt,
      replica: lease.spec?.holderIdentity ?? '',
    };
  }

  /** The prefix, `ended-` and a hash of what tells one run's end from another: its group, flow, event and end (wall clock, as written). */
  private nameFrom(a: Readonly<Record<string, string | undefined>>): string {
    return leaseName(`${this.options.leasePrefix}ended-`, [a[A.key], a[A.flow], a[A.eventId], a[A.finishedAt]].join('\n'));
  }
}
