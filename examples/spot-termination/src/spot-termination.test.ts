import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spotAlert, startSpotTerminationStack, type SpotTerminationStack } from './stack.js';

describe('spot termination end to end through core', () => {
  let stack: SpotTerminationStack;
  const logs: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    stack = await startSpotTerminationStack({ logger: pino({ level: 'info' }, sink) });
  });
  afterAll(() => stack.close());

  it('one alert runs the drain plugin, then the AWS plugin, in one flow, and the attributes are passed along', async () => {
    const res = await fetch(`${stack.core.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spotAlert(stack.instanceId)) });
    expect(res.status).toBe(200);
    for (let i = 0; i < 500 && stack.core.engine.recentRuns().length === 0; i++) await new Promise((r) => setTimeout(r, 20));

    const [run] = stack.core.engine.recentRuns();
    expect(run).toMatchObject({ flow: 'spot-termination', outcome: 'succeeded' });
    expect(run!.calls.map((c) => [c.plugin, c.code])).toEqual([['k8s-drain', 'OK'], ['aws-spot', 'OK'], ['log', 'OK']]);

    // The drain: node found by instance id, cordoned and tainted, its pods evicted.
    const node = stack.kube.cluster.node(stack.nodeName)!;
    expect(node.spec?.unschedulable).toBe(true);
    expect(node.spec?.taints).toContainEqual(expect.objectContaining({ key: 'hollowtrees.io/spot-termination', effect: 'NoSchedule' }));
    expect(stack.kube.cluster.pods(stack.nodeName)).toEqual([]);

    // The replacement: detached from its group with the desired capacity kept.
    expect(stack.group.desiredCapacity).toBe(2);
    expect([...stack.group.members.keys()]).not.toContain(stack.instanceId);
    expect(stack.group.members.size).toBe(2);

    // The event the last plugin saw carries what both plugins returned.
    const logged = logs.find((l) => l.plugin === 'log')!.event as { data: { labels: Record<string, string> } };
    expect(logged.data.labels).toMatchObject({
      instance_id: stack.instanceId,
      node: stack.nodeName,
      pods_evicted: '6',
      pods_remaining: '0',
      strategy: 'asg-detach',
      auto_scaling_group: stack.groupName,
      replacement_requested: 'true',
    });
  });
});
