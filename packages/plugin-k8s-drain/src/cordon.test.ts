import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { rejectionOf, type KubeApiServer } from '@hollowtrees/testkit';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { recordingLogger } from '@hollowtrees/grpcplugin/testing';
import { describe, expect, it } from 'vitest';
import { cordonNode, cordonPatch, uncordonNode, uncordonPatch } from './cordon.js';
import { cleanupsAfterEach, retryWithin, startStandIn } from './test-support/kube.js';
import type { NodeMarks } from './node-marks.js';
import { POOL_CORDON_ANNOTATION, recordedPoolCordon } from './pool-cordon-record.js';

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

describe('the pool drain\'s record of its cordon', () => {
  const withRecord = (value: string, spec: { unschedulable?: boolean; taints?: V1Taint[] } = { unschedulable: true, taints: [ours] }): V1Node => {
    const n = node(spec, { drained: 'yes' });
    return { ...n, metadata: { ...n.metadata, uid: 'u1', annotations: { [POOL_CORDON_ANNOTATION]: value } } };
  };
  const SURGE = Date.parse('2026-11-30T02:00:00Z');
  const claim = { pool: 'a/m5', surgeAt: SURGE };
  const record = (fields: object): string => JSON.stringify({ pool: 'a/m5', surgeAt: new Date(SURGE).toISOString(), uid: 'u1', wasUnschedulable: false, ...fields });

  it('is written by a pool drain\'s cordon, with its surge\'s time and the node as it was before', () => {
    const n = { ...node({ unschedulable: true }), metadata: { name: 'n', resourceVersion: '42', uid: 'u1' } };
    const patch = cordonPatch(n, marks, claim) as { metadata: { annotations: Record<string, string> } };
    expect(JSON.parse(patch.metadata.annotations[POOL_CORDON_ANNOTATION]!)).toEqual({ pool: 'a/m5', surgeAt: '2026-11-30T02:00:00.000Z', uid: 'u1', wasUnschedulable: true });
    expect(recordedPoolCordon({ ...n, metadata: { ...n.metadata, annotations: patch.metadata.annotations } }, 'a/m5')).toEqual({ uid: 'u1', wasUnschedulable: true, surgeAt: SURGE });
  });

  it('is removed by any other cordon, even of a node already cordoned (taken over: no resolution may undo it), and by an uncordon', () => {
    expect(cordonPatch(withRecord(record({})), marks)).toMatchObject({ metadata: { annotations: { [POOL_CORDON_ANNOTATION]: null } } });
    expect(uncordonPatch(withRecord(record({})), marks, false)).toMatchObject({ metadata: { labels: { drained: null }, annotations: { [POOL_CORDON_ANNOTATION]: null } } });
  });

  it("moves to a newer surge's drain of the pool that finds the node cordoned, keeping the state before the first cordon; no other drain's", () => {
    expect(cordonPatch(withRecord(record({})), marks, claim)).toBeUndefined();
    expect(cordonPatch(withRecord(record({})), marks, { ...claim, surgeAt: SURGE - 1 })).toBeUndefined();
    expect(cordonPatch(withRecord(record({ pool: 'b/m5' })), marks, { ...claim, surgeAt: SURGE + 1 })).toBeUndefined();
    const moved = (patch: object | undefined): unknown => JSON.parse((patch as { metadata: { annotations: Record<string, string> } }).metadata.annotations[POOL_CORDON_ANNOTATION]!);
    const later = { ...claim, surgeAt: SURGE + 60_000 };
    expect(moved(cordonPatch(withRecord(record({ wasUnschedulable: true })), marks, later))).toEqual({ pool: 'a/m5', surgeAt: '2026-11-30T02:01:00.000Z', uid: 'u1', wasUnschedulable: true });
    // A record an earlier version wrote names no surge: any surge is newer.
    const { surgeAt: _, ...unversioned } = JSON.parse(record({})) as Record<string, unknown>;
    expect(recordedPoolCordon(withRecord(JSON.stringify(unversioned)), 'a/m5')).toEqual({ uid: 'u1', wasUnschedulable: false });
    expect(moved(cordonPatch(withRecord(JSON.stringify(unversioned)), marks, claim))).toMatchObject({ surgeAt: '2026-11-30T02:00:00.000Z', wasUnschedulable: false });
  });

  it.each([
    ['another pool', record({ pool: 'b/m5' })],
    ['another node object', record({ uid: 'u0' })],
    ['no JSON', 'yes'],
    ['JSON but no object', '["a/m5"]'],
    ['null', 'null'],
    ['a wasUnschedulable that is no boolean', record({ wasUnschedulable: 'false' })],
    ['a surgeAt that is no time', record({ surgeAt: 'yesterday' })],
    ['a surgeAt that is no string', record({ surgeAt: SURGE })],
  ])('names no cordon of the pool when it records %s', (_, value) => {
    expect(recordedPoolCordon(withRecord(value), 'a/m5')).toBeUndefined();
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

describe('cordonNode and uncordonNode against the API server', () => {
  const cleanups = cleanupsAfterEach();

  async function start() {
    const { kube, api } = await startStandIn(cleanups);
    kube.cluster.addNode({ metadata: { name: 'n1' } });
    const logger = recordingLogger();
    const run = (dryRun = false) => ({ ...retryWithin(cleanups, 5_000), dryRun, logger });
    return { kube, api, run, lines: logger.lines };
  }
  const patches = (kube: KubeApiServer) => kube.requests.filter((r) => r.method === 'PATCH').map((r) => r.code);

  it('cordons from the node it was given; after a conflict it reads the node again and patches that', async () => {
    const { kube, api, run, lines } = await start();
    const stale = kube.cluster.node('n1')!;
    // Someone else changes the node after it was read: the patch's resourceVersion is stale.
    kube.cluster.patchNode('n1', 'application/merge-patch+json', { metadata: { labels: { team: 'a' } } });

    expect(await cordonNode(api, stale as V1Node, marks, run())).toEqual({ changed: true, wasUnschedulable: false });
    expect(patches(kube)).toEqual([409, 200]);
    expect(kube.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes/n1')).toHaveLength(1);
    const now = kube.cluster.node('n1')!;
    expect([now.spec?.unschedulable, now.metadata.labels]).toEqual([true, { team: 'a', drained: 'yes' }]);
    expect(lines).toEqual([{ level: 'info', message: 'cordoned and tainted node', fields: { node: 'n1', taint: marks.taint, label: marks.label } }]);
  });

  it('says the node was unschedulable before when someone else cordoned it after it was read (the conflict re-reads it)', async () => {
    const { kube, api, run } = await start();
    const stale = kube.cluster.node('n1')!;
    kube.cluster.patchNode('n1', 'application/merge-patch+json', { spec: { unschedulable: true } });
    expect(await cordonNode(api, stale as V1Node, marks, run())).toEqual({ changed: true, wasUnschedulable: true });
    expect(patches(kube)).toEqual([409, 200]);
  });

  it('counts a cordon whose answer was lost as its own when the next try finds the node cordoned', async () => {
    const { kube, api, run } = await start();
    kube.failNext(1, { effect: 'lose-answer', method: 'PATCH' });
    expect(await cordonNode(api, kube.cluster.node('n1')! as V1Node, marks, run())).toEqual({ changed: true, wasUnschedulable: false });
    expect(patches(kube)).toEqual([200]);
  });

  it('counts an uncordon whose answer was lost as done when the next try finds the label gone', async () => {
    const { kube, api, run } = await start();
    await cordonNode(api, kube.cluster.node('n1')! as V1Node, marks, run());
    kube.failNext(1, { effect: 'lose-answer', method: 'PATCH' });
    expect(await uncordonNode(api, 'n1', marks, false, run())).toBe(true);
    expect(patches(kube)).toEqual([200, 200]);
    expect(kube.cluster.node('n1')!.spec?.unschedulable).toBe(false);
  });

  it('in dry run, logs the patch it would send and sends none, for a cordon and an uncordon', async () => {
    const { kube, api, run, lines } = await start();
    const before = kube.cluster.node('n1')! as V1Node;
    expect(await cordonNode(api, before, marks, run(true))).toEqual({ changed: true, wasUnschedulable: false });
    expect(lines).toEqual([{ level: 'info', message: 'dry run: would cordon and taint node', fields: { node: 'n1', patch: cordonPatch(before, marks) } }]);

    await cordonNode(api, before, marks, run());
    lines.length = 0;
    const cordoned = kube.cluster.node('n1')! as V1Node;
    expect(await uncordonNode(api, 'n1', marks, false, run(true))).toBe(true);
    expect(lines).toEqual([{ level: 'info', message: 'dry run: would uncordon node', fields: { node: 'n1', patch: uncordonPatch(cordoned, marks, false) } }]);
    expect(patches(kube)).toEqual([200]);
  });

  it('uncordons a node it cordoned, logging it, and leaves one without its label alone', async () => {
    const { kube, api, run, lines } = await start();
    await cordonNode(api, kube.cluster.node('n1')! as V1Node, marks, run());
    lines.length = 0;
    expect(await uncordonNode(api, 'n1', marks, false, run())).toBe(true);
    expect(lines).toEqual([{ level: 'info', message: 'uncordoned node', fields: { node: 'n1' } }]);
    expect(kube.cluster.node('n1')!.spec?.unschedulable).toBe(false);
    expect(await uncordonNode(api, 'n1', marks, false, run())).toBe(false);
    expect(patches(kube)).toEqual([200, 200]);
  });

  it('names the node in a refusal no retry can fix', async () => {
    const { kube, api, run } = await start();
    kube.failNext(1, { code: 403, method: 'PATCH' });
    const cordon = await rejectionOf(cordonNode(api, kube.cluster.node('n1')! as V1Node, marks, run()), PluginError);
    expect([cordon.code, cordon.message.startsWith('cordoning node "n1": ')]).toEqual([Code.PermissionDenied, true]);
    kube.failNext(1, { code: 403, method: 'GET' });
    const uncordon = await rejectionOf(uncordonNode(api, 'n1', marks, false, run()), PluginError);
    expect([uncordon.code, uncordon.message.startsWith('uncordoning node "n1": ')]).toEqual([Code.PermissionDenied, true]);
  });
});
