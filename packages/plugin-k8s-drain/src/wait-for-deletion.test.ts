import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { rejectionOf, type KubeApiServer } from '@hollowtrees/testkit';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import { cleanupsAfterEach, held, retryWithin, startStandIn } from './test-support/kube.js';
import { waitForPodsGone } from './wait-for-deletion.js';

const cleanups = cleanupsAfterEach();

async function start() {
  // 10 ms per grace second.
  const standIn = await startStandIn(cleanups, { msPerGraceSecond: 10 });
  standIn.kube.cluster.addNode({ metadata: { name: 'n1' } });
  return standIn;
}

const run = (ms: number, pollMs = 20) => ({ ...retryWithin(cleanups, ms, 20), pollMs });

const addPod = (kube: KubeApiServer, name: string, grace: number): V1Pod =>
  kube.cluster.addPod({ metadata: { name, namespace: 'apps', uid: `uid-${name}` }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: grace } }) as V1Pod;
const polls = (kube: KubeApiServer) => kube.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/pods' && r.query.fieldSelector === 'spec.nodeName=n1');

describe('waitForPodsGone', () => {
  it('polls until the pods are gone', async () => {
    const { kube, api } = await start();
    // A grace period longer than any test: the pod goes when the test cuts it short, after polls that saw it,
    // not on a timer that a busy machine can let run out before the first poll.
    const web = addPod(kube, 'web-0', 100_000);
    kube.cluster.deletePod('apps', 'web-0', 100_000);
    const gone = waitForPodsGone(api, 'n1', [web], run(5_000));
    await vi.waitFor(() => expect(polls(kube).length).toBeGreaterThan(1), { timeout: 5_000, interval: 5 });
    kube.cluster.deletePod('apps', 'web-0', 0);
    expect(await gone).toEqual([]);
  });

  it('matches pods by uid: a new pod of the same name is not the one it waits for', async () => {
    const { kube, api } = await start();
    const old = addPod(kube, 'web-0', 10);
    kube.cluster.deletePod('apps', 'web-0', 0);
    // A StatefulSet's next web-0, on the same node.
    kube.cluster.addPod({ metadata: { name: 'web-0', namespace: 'apps', uid: 'uid-web-0-new' }, spec: { nodeName: 'n1' } });
    expect(await waitForPodsGone(api, 'n1', [old], run(1_000))).toEqual([]);
  });

  it('answers the pods still there when the deadline is less than one poll away, without failing', async () => {
    const { kube, api } = await start();
    const slow = addPod(kube, 'slow', 1_000);
    kube.cluster.deletePod('apps', 'slow', 1_000);
    const left = await waitForPodsGone(api, 'n1', [slow], run(300, 100));
    expect(left.map((p) => p.metadata?.name)).toEqual(['slow']);
  });

  it('answers the pods still there when the deadline comes during a listing, without failing', async () => {
    const { kube, api } = await start();
    const slow = addPod(kube, 'slow', 1_000);
    kube.failNext(1, { effect: 'delay', until: held(cleanups).until, method: 'GET', path: /^\/api\/v1\/pods$/ });
    expect((await waitForPodsGone(api, 'n1', [slow], run(400))).map((p) => p.metadata?.name)).toEqual(['slow']);
    // The one listing was held, and never answered.
    expect(polls(kube)).toHaveLength(0);
  });

  it('answers the pods still there when the API server fails every listing until the deadline, without failing', async () => {
    const { kube, api } = await start();
    const slow = addPod(kube, 'slow', 1_000);
    kube.failNext(1_000, { code: 503, method: 'GET', path: /^\/api\/v1\/pods$/ });
    // The deadline is on a manual clock, moved past it once the listing has been retried: on the system clock a
    // busy machine could spend the whole budget on one listing. Until then, each wait (besides the deadline's own)
    // is woken as it comes.
    const clock = manualClock();
    const left = waitForPodsGone(api, 'n1', [slow], { ...retryWithin(cleanups, 400, 20, clock), pollMs: 20 });
    await vi.waitFor(() => {
      if (clock.sleeping > 1) clock.advance(20);
      expect(polls(kube).length).toBeGreaterThan(1);
    }, { timeout: 5_000, interval: 5 });
    clock.advance(400);
    expect((await left).map((p) => p.metadata?.name)).toEqual(['slow']);
    // Retried, and answered 503 every time.
    expect(polls(kube).every((r) => r.code === 503)).toBe(true);
  });

  it('fails with what it was doing when the listing is refused for good', async () => {
    const { kube, api } = await start();
    const slow = addPod(kube, 'slow', 1_000);
    kube.failNext(1, { code: 403, method: 'GET', path: /^\/api\/v1\/pods$/ });
    const err = await rejectionOf(waitForPodsGone(api, 'n1', [slow], run(5_000)), PluginError);
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/^listing the pods of node "n1": /);
  });
});
