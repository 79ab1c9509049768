import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { alertToEvent } from './alert-to-event.js';
import { SharedStrings } from './shared-strings.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const receivedAt = new Date('2026-12-02T10:00:00Z');
/** A batch's events as the receiver gets them from the parse thread: JSON text, parsed, so every string is its own copy. */
function parsedBatch(count: number): CloudEvent[] {
  const events = Array.from({ length: count }, (_, i) =>
    alertToEvent(
      {
        labels: { alertname: 'SpotInstanceTerminating', availability_zone: 'eu-west-1a', cluster_name: 'prod-eu', instance_id: `i-${String(i).padStart(17, '0')}`, instance_type: 'm5.large', job: 'node', severity: 'critical' },
        annotations: { summary: 'The spot instance is being reclaimed', runbook_url: 'https://runbooks.example.com/spot' },
        status: 'firing',
        startsAt: '2026-12-02T09:59:00Z',
        endsAt: '2026-12-02T16:00:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=aws_spot_termination%3E0',
      },
      receivedAt,
      '//hollowtrees/prometheus',
    ),
  );
  return JSON.parse(JSON.stringify(events)) as CloudEvent[];
}

/** Bytes of heap that `make()`'s result holds, per item, after full collections around it. */
function heldPerItem(count: number, make: () => unknown): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const held = make();
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  expect(held).toBeDefined();
  return bytes / count;
}

describe('SharedStrings', () => {
  it('leaves every event as it was, value for value', () => {
    const events = parsedBatch(50);
    const copy = structuredClone(events);
    const strings = new SharedStrings();
    for (const event of events) strings.shareEvent(event);
    expect(events).toStrictEqual(copy);
  });

  it('makes a backlog of parsed alerts hold a fifth fewer bytes: the values a batch repeats are held once', () => {
    const count = 10_000;
    const alone = heldPerItem(count, () => parsedBatch(count));
    const shared = heldPerItem(count, () => {
      const strings = new SharedStrings();
      const events = parsedBatch(count);
      for (const event of events) strings.shareEvent(event);
      return events;
    });
    expect(shared, `${shared.toFixed(0)} B an alert shared, ${alone.toFixed(0)} B alone`).toBeLessThan(alone * 0.8);
  });
});

describe('SharedStrings and the field names senders choose', () => {
  /** A CloudEvent whose data has one key of 100,000 characters, named for `round` and `i`, parsed as the receiver's are. */
  const longKeyEvent = (round: number, i: number): CloudEvent =>
    JSON.parse(JSON.stringify({ specversion: '1.0', id: `e-${round}-${i}`, source: 'test', type: 't', data: { labels: {}, [`${round}-${String(i).padStart(3, '0')}${'k'.repeat(100_000)}`]: 'v' } })) as CloudEvent;

  /** Bytes of heap per event that a new SharedStrings, still in use, holds after sharing `count` such events of `round`. */
  function retainedPerEvent(round: number, count: number): number {
    const strings = new SharedStrings();
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < count; i++) strings.shareEvent(longKeyEvent(round, i));
    // Twice: the hidden classes of the events' objects, which also name the keys, go at the second.
    gc();
    gc();
    const retained = (process.memoryUsage().heapUsed - before) / count;
    expect(strings.share('labels', 'x')).toBe('x');
    return retained;
  }

  it('keeps no field name longer than a shared value: events with 100,000-character data keys leave nothing behind once gone', () => {
    // A first round unmeasured: what the first such events leave for good (compiled code, the shapes' transition tables)
    // was up to 1.8 KB an event, over the bound; later rounds leave a few bytes. The median of three rides out a stray one.
    retainedPerEvent(0, 100);
    const readings = [1, 2, 3].map((round) => retainedPerEvent(round, 100));
    const median = [...readings].sort((x, y) => x - y)[1]!;
    // Before: each key, 100 KB, was kept as a field name for good (10 MB for a round's 100 events), in every round.
    expect(median, `${median.toFixed(0)} B held an event (the median of ${readings.map((r) => r.toFixed(0)).join(', ')})`).toBeLessThan(1_000);
  });
});
