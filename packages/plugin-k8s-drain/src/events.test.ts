/** Node events through the real client against the Kubernetes API stand-in over real HTTP. */
import { hostname } from 'node:os';
import { recordingLogger, type LogLine } from '@hollowtrees/grpcplugin/testing';
import type { KubeApiServer } from '@hollowtrees/testkit';
import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { EventRecorder } from './events.js';
import { cleanupsAfterEach, startStandIn } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

async function recorderOn(options: { maxPending?: number; dryRun?: boolean } = {}): Promise<{ api: KubeApiServer; recorder: EventRecorder; logged: LogLine[] }> {
  const { kube, api } = await startStandIn(cleanups);
  const logger = recordingLogger();
  const recorder = new EventRecorder(api, { namespace: 'ops', logger, dryRun: options.dryRun ?? false, maxPending: options.maxPending ?? 10 });
  return { api: kube, recorder, logged: logger.lines };
}

const node: V1Node = { metadata: { name: 'node-a' } };

describe('EventRecorder', () => {
  it('records the event where kubectl describe node finds it', async () => {
    const { api, recorder } = await recorderOn();
    const before = Date.now();
    recorder.record(node, { reason: 'CordonAndDrain', type: 'Normal', message: 'drained node node-a: 3 pods evicted' });
    await recorder.idle();
    const [event] = api.cluster.events();
    expect(event).toMatchObject({
      metadata: { namespace: 'ops' },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: 'node-a' },
      reason: 'CordonAndDrain',
      type: 'Normal',
      message: 'drained node node-a: 3 pods evicted',
      source: { component: 'hollowtrees-k8s-drain', host: hostname() },
      reportingComponent: 'hollowtrees.io/k8s-drain',
      reportingInstance: hostname(),
      count: 1,
    });
    // The API server names it from generateName: the node's name and a dot, then its own suffix.
    expect(event!.metadata.name).toMatch(/^node-a\..+/);
    const first = Date.parse(String(event!.firstTimestamp));
    expect(first).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(event!.lastTimestamp).toEqual(event!.firstTimestamp);
  });

  it('past maxPending events in flight drops new ones and says so once, then records again once there is room', async () => {
    const { api, recorder, logged } = await recorderOn({ maxPending: 2 });
    let release!: () => void;
    api.failNext(2, { effect: 'delay', until: new Promise<void>((resolve) => (release = resolve)), method: 'POST' });
    for (let i = 0; i < 5; i++) recorder.record(node, { reason: 'SpotInterruption', type: 'Warning', message: `m${i}` });
    expect(logged.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', message: 'too many Kubernetes Events in flight: dropping', fields: { node: 'node-a', reason: 'SpotInterruption', dropped: 1 } },
    ]);
    let idle = false;
    const settled = recorder.idle().then(() => (idle = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(idle).toBe(false);
    release();
    await settled;
    expect(api.cluster.events().map((e) => e.message)).toEqual(['m0', 'm1']);
    recorder.record(node, { reason: 'SpotInterruption', type: 'Warning', message: 'after' });
    await recorder.idle();
    expect(api.cluster.events().map((e) => e.message)).toEqual(['m0', 'm1', 'after']);
  });

  it('logs an event the API server refused, and goes on', async () => {
    const { api, recorder, logged } = await recorderOn();
    api.failNext(1, { code: 403, method: 'POST' });
    recorder.record(node, { reason: 'DrainFailed', type: 'Warning', message: 'x' });
    await recorder.idle();
    expect(logged).toMatchObject([{ level: 'warn', message: 'could not record a Kubernetes Event on the node', fields: { node: 'node-a', reason: 'DrainFailed' } }]);
    expect(String((logged[0]!.fields as { err: Error }).err.message)).toMatch(/creating the event/);
    expect(api.cluster.events()).toEqual([]);
  });

  it('in dry-run only logs what it would record', async () => {
    const { api, recorder, logged } = await recorderOn({ dryRun: true });
    recorder.record(node, { reason: 'SpotInterruption', type: 'Warning', message: 'soon' });
    await recorder.idle();
    expect(logged).toEqual([{ level: 'info', message: 'dry run: would record a Kubernetes Event', fields: { node: 'node-a', reason: 'SpotInterruption', type: 'Warning', message: 'soon' } }]);
    expect(api.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });
});
