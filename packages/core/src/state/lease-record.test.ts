import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { eventOf, fromLease, leaseEventOf, toLease, type LeaseRecord } from './lease-record.js';

const event: CloudEvent = { id: 'e1', source: 's', specversion: '1.0', type: 't' };
const record: LeaseRecord = { key: 'g', flow: 'spot', eventId: 'e1', phase: 'running', since: 1, holder: '', renewedAt: 2, leaseDurationMs: 30_000, transitions: 0 };

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
