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
  it('keeps no field name longer than a shared value: events with 100,000-character data keys leave nothing behind once gone', () => {
    const strings = new SharedStrings();
    gc();
    const before = process.memoryUsage().heapUsed;
    // A CloudEvent's data takes any key, as long as the body allows (1 MiB by default): these are parsed, as the receiver's are.
    for (let i = 0; i < 256; i++) {
      const event = JSON.parse(JSON.stringify({ specversion: '1.0', id: `e-${i}`, source: 'test', type: 't', data: { labels: {}, [`${String(i).padStart(3, '0')}${'k'.repeat(100_000)}`]: 'v' } })) as CloudEvent;
      strings.shareEvent(event);
    }
    // Twice: the hidden classes of the events' objects, which also name the keys, go at the second.
    gc();
    gc();
    const retained = (process.memoryUsage().heapUsed - before) / 256;
    expect(strings.share('labels', 'x')).toBe('x');
    // Before: each key, 100 KB, was kept as a field name for good (25 MB for these 256 events).
    expect(retained, `${retained.toFixed(0)} B held an event`).toBeLessThan(1_000);
  });
});
