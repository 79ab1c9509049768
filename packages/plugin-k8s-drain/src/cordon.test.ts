import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { cordonPatch, uncordonPatch } from './cordon.js';
import type { NodeMarks } from './node-marks.js';

const marks: NodeMarks = { taint: { key: 'spot', value: 'true', effect: 'NoSchedule' }, label: { key: 'drained', value: 'yes' } };
const ours: V1Taint = { key: 'spot', value: 'true', effect: 'NoSchedule' };
const other: V1Taint = { key: 'gpu', value: 'a100', effect: 'NoSchedule' };

function node(spec: { unschedulable?: boolean; taints?: V1Taint[] }, labels?: Record<string, string>): V1Node {
  return { metadata: { name: 'n', resourceVersion: '42', ...(labels ? { labels } : {}) }, spec };
}

describe('cordonPatch', () => {
  it('leaves alone a node already cordoned, tainted and labelled', () => {
    expect(cordonPatch(node({ unschedulable: true, taints: [other, ours] }, { drained: 'yes' }), marks)).toBeUndefined();
  });

  it.each([
    ['schedulable', node({ unschedulable: false, taints: [ours] }, { drained: 'yes' })],
    ['without the taint', node({ unschedulable: true, taints: [other] }, { drained: 'yes' })],
    ['with the taint of another value', node({ unschedulable: true, taints: [{ ...ours, value: 'false' }] }, { drained: 'yes' })],
    ['with the taint key under another effect', node({ unschedulable: true, taints: [{ ...ours, effect: 'NoExecute' }] }, { drained: 'yes' })],
    ['with another taint of the same effect', node({ unschedulable: true, taints: [{ ...ours, key: 'other' }] }, { drained: 'yes' })],
    ['without the label', node({ unschedulable: true, taints: [ours] })],
    ['with the label of another value', node({ unschedulable: true, taints: [ours] }, { drained: 'no' })],
  ])('patches a node %s', (_, n) => {
    const patch = cordonPatch(n, marks) as { metadata: unknown; spec: { unschedulable: boolean; taints: V1Taint[] } };
    expect(patch.metadata).toEqual({ resourceVersion: '42', labels: { drained: 'yes' } });
    expect(patch.spec.unschedulable).toBe(true);
    // Our taint once, with our value; every taint in another slot (key and effect) kept.
    expect(patch.spec.taints.filter((t) => t.key === 'spot' && t.effect === 'NoSchedule')).toEqual([ours]);
    const others = (n.spec?.taints ?? []).filter((t) => !(t.key === 'spot' && t.effect === 'NoSchedule'));
    expect(patch.spec.taints.slice(0, -1)).toEqual(others);
  });

  it('reads a taint without a value as the empty value', () => {
    const valueless: NodeMarks = { ...marks, taint: { key: 'spot', value: '', effect: 'NoSchedule' } };
    expect(cordonPatch(node({ unschedulable: true, taints: [{ key: 'spot', effect: 'NoSchedule' }] }, { drained: 'yes' }), valueless)).toBeUndefined();
  });

  it('patches a node that has no spec or labels at all', () => {
    expect(cordonPatch({ metadata: { name: 'bare' } }, marks)).toEqual({ metadata: { resourceVersion: undefined, labels: { drained: 'yes' } }, spec: { unschedulable: true, taints: [ours] } });
  });
});

describe('uncordonPatch', () => {
  const cordoned = node({ unschedulable: true, taints: [other, ours, { ...ours, effect: 'NoExecute' }] }, { drained: 'yes', zone: 'a' });

  it('removes our taint and label, and makes the node schedulable again', () => {
    expect(uncordonPatch(cordoned, marks, false)).toEqual({
      metadata: { resourceVersion: '42', labels: { drained: null } },
      spec: { unschedulable: false, taints: [other, { ...ours, effect: 'NoExecute' }] },
    });
  });

  it('keeps the node unschedulable when it was before the cordon', () => {
    expect(uncordonPatch(cordoned, marks, true)).toEqual({ metadata: { resourceVersion: '42', labels: { drained: null } }, spec: { taints: [other, { ...ours, effect: 'NoExecute' }] } });
  });

  it('leaves alone a node whose label someone else changed or removed', () => {
    expect(uncordonPatch(node({ unschedulable: true, taints: [ours] }, { drained: 'no' }), marks, false)).toBeUndefined();
    expect(uncordonPatch(node({ unschedulable: true, taints: [ours] }), marks, false)).toBeUndefined();
  });

  it('patches a labelled node without taints', () => {
    expect(uncordonPatch({ metadata: { name: 'n', labels: { drained: 'yes' } } }, marks, false)).toEqual({ metadata: { resourceVersion: undefined, labels: { drained: null } }, spec: { unschedulable: false, taints: [] } });
  });
});
