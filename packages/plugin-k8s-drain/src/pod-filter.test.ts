import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { planEviction, podKey } from './pod-filter.js';

const pod = (name: string, extra: Partial<V1Pod['metadata']> = {}): V1Pod => ({
  metadata: { name, namespace: 'apps', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs', controller: true }], ...extra },
  spec: { containers: [] },
});

describe('planEviction', () => {
  it('waits for a pod already terminating instead of evicting it again', () => {
    const going = pod('web-0', { deletionTimestamp: new Date() });
    const plan = planEviction([going, pod('web-1')], { deleteEmptyDirData: true });
    expect(plan.terminating.map(podKey)).toEqual(['apps/web-0']);
    expect(plan.evict.map(podKey)).toEqual(['apps/web-1']);
  });
});
