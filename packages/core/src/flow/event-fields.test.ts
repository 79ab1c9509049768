import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { approximateBytes } from './event-bytes.js';
import { readEventField } from './event-fields.js';

const event: CloudEvent = {
  id: 'e1', source: 's', specversion: '1.0', type: 't', time: '2026-11-25T10:00:00Z', subject: 'node/ip-1', datacontenttype: 'application/json', dataschema: 'urn:schema',
  // Labels named like the attributes: an attribute name always means the attribute.
  data: { labels: { instance_id: 'i-1', count: 3, spot: true, nested: { a: 'b' }, id: 'L', source: 'L', specversion: 'L', type: 'L', time: 'L', subject: 'L', datacontenttype: 'L', dataschema: 'L' }, annotations: { summary: 'x' }, detail: 'plain' },
};

describe('readEventField', () => {
  it.each([
    ['id', 'e1'],
    ['source', 's'],
    ['specversion', '1.0'],
    ['type', 't'],
    ['time', '2026-11-25T10:00:00Z'],
    ['subject', 'node/ip-1'],
    ['datacontenttype', 'application/json'],
    ['dataschema', 'urn:schema'],
    ['instance_id', 'i-1'],
    ['count', '3'],
    ['spot', 'true'],
    ['nested', undefined],
    ['missing', undefined],
    ['annotations.summary', 'x'],
    ['detail.deeper', undefined],
    ['labels.instance_id', 'i-1'],
  ])('%s → %s', (key, value) => expect(readEventField(event, key)).toBe(value));

  it('finds nothing in an event without object data, nor in an attribute it lacks', () => {
    expect(readEventField({ id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { time: 'L' } } }, 'time')).toBeUndefined();
    expect(readEventField({ ...event, data: 'text' }, 'instance_id')).toBeUndefined();
    expect(readEventField({ ...event, data: null }, 'annotations.summary')).toBeUndefined();
  });
});

describe('approximateBytes', () => {
  it('counts the characters of every string and key plus a fixed overhead per value, and the bytes of binary data', () => {
    expect(approximateBytes('abcd')).toBe(16 + 4);
    expect(approximateBytes(7)).toBe(16);
    expect(approximateBytes(null)).toBe(16);
    expect(approximateBytes(new Uint8Array(100))).toBe(16 + 100);
    expect(approximateBytes(['ab', 'c'])).toBe(16 + (16 + 2) + (16 + 1));
    expect(approximateBytes({ key: 'value', n: 1 })).toBe(16 + 3 + (16 + 5) + 1 + 16);
    expect(approximateBytes({ labels: { node: 'x'.repeat(1_000) } })).toBeGreaterThan(1_000);
  });
});
