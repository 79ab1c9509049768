import { describe, expect, it } from 'vitest';
import { labelsOf, type CloudEvent } from './cloud-event.js';

const withData = (data: unknown): CloudEvent => ({ id: '1', source: 's', specversion: '1.0', type: 't', data });

describe('labelsOf', () => {
  it('returns the string labels of data.labels', () => {
    expect(labelsOf(withData({ labels: { instance_id: 'i-1', node: 'n1' }, status: 'firing' }))).toEqual({ instance_id: 'i-1', node: 'n1' });
  });

  it('leaves out labels whose value is not a string', () => {
    expect(labelsOf(withData({ labels: { instance_id: 'i-1', count: 3, gone: null, nested: { a: 'b' } } }))).toEqual({ instance_id: 'i-1' });
  });

  it.each([
    ['no data', undefined],
    ['null data', null],
    ['text data', 'labels'],
    ['binary data', new Uint8Array([1])],
    ['data without labels', { annotations: { summary: 'x' } }],
    ['null labels', { labels: null }],
    ['labels that are a string', { labels: 'instance_id=i-1' }],
  ])('is empty for %s', (_name, data) => {
    expect(labelsOf(withData(data))).toEqual({});
  });
});
