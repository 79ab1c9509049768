import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { eventOf, fromLease, leaseEventOf, toLease, type LeaseRecord } from './lease-record.js';

const event: CloudEvent = { id: 'e1', source: 's', specversion: '1.0', type: 't' };
const record: LeaseRecord = { key: 'g', flow: 'spot', eventId: 'e1', phase: 'running', since: 1, holder: '', claim: 'c-1', renewedAt: 2, leaseDurationMs: 30_000, transitions: 0 };

describe('a Lease written by a later version', () => {
  it('keeps its place and event readable when they carry members this version does not know: a rolling update does not run the group from its start', () => {
    const place = { next: 1, attributes: { node: 'n-1' }, attempt: 1, restarts: 0 };
    const lease = toLease('hollowtrees-x', { ...record, place, event: eventOf({ event, receivedAt: 3, attributes: {}, next: 0, attempt: 1, restarts: 0 }) });
    const annotations = lease.metadata!.annotations!;
    annotations['hollowtrees.io/run-place'] = JSON.stringify({ ...place, addedLater: { any: 'thing' } });
    annotations['hollowtrees.io/run-event'] = JSON.stringify({ event, receivedAt: 3, addedLater: true });
    const read = fromLease(lease)!;
    expect(read.place).toEqual(place);
    expect(leaseEventOf(read)).toEqual({ event, receivedAt: 3 });
  });
});

describe('a Lease written by a process whose wall clock was stepped since it started (its run state on steadyClock)', () => {
  const STEP = 2 * 3_600_000;
  const T = Date.parse('2026-12-02T10:00:00Z');
  const place = { next: 1, attributes: {}, attempt: 2, restarts: 0, retryAt: T + 5_000 };
  const run = { ...record, since: T, renewedAt: T + 1_000, place, event: eventOf({ event, receivedAt: T - 500, attributes: {}, next: 0, attempt: 1, restarts: 0 }, STEP) };

  it('holds wall-clock times (the step added), which other replicas and the next process read on their own wall clock', () => {
    const lease = toLease('hollowtrees-x', { ...run, phase: 'cooling', until: T + 600_000 }, undefined, STEP);
    expect(lease.metadata!.annotations!['hollowtrees.io/since']).toBe(new Date(T + STEP).toISOString());
    expect(lease.metadata!.annotations!['hollowtrees.io/cooldown-until']).toBe(new Date(T + 600_000 + STEP).toISOString());
    expect(new Date(lease.spec!.renewTime as Date).getTime()).toBe(T + 1_000 + STEP);
    const running = toLease('hollowtrees-x', run, undefined, STEP);
    expect(JSON.parse(running.metadata!.annotations!['hollowtrees.io/run-place']!)).toMatchObject({ retryAt: T + 5_000 + STEP });
    expect(leaseEventOf(fromLease(running)!)).toEqual({ event, receivedAt: T - 500 + STEP });
  });

  it('is read back by that process as it was written (the step taken off): a claim knows its own Lease', () => {
    const read = fromLease(toLease('hollowtrees-x', run, undefined, STEP), STEP)!;
    expect(read).toEqual(run);
    expect(leaseEventOf(read, STEP)).toEqual({ event, receivedAt: T - 500 });
  });
});
