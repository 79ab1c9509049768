import { pollUntil } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { spotInterruptionWarning, startSpotTerminationStack, type SpotTerminationStack } from './stack.js';


describe('spot termination from an EventBridge → SQS queue, end to end through the real SDK', () => {
  let stack: SpotTerminationStack | undefined;
  /** Resolves when `check` holds (polling every 50 ms), or fails after `ms` saying where things stand. */
  const eventually = (check: () => boolean, ms = 15_000): Promise<void> =>
    pollUntil(check, ms, () => `queue holds ${stack?.sqs?.queue.list().length} messages; runs: ${JSON.stringify(stack?.core.engine.recentRuns().map((r) => r.outcome))}`);
  /** The queue is empty and the delete that emptied it was answered (the stand-in records a call as it answers). */
  const drained = (s: SpotTerminationStack): Promise<void> =>
    eventually(() => s.sqs!.queue.list().length === 0 && s.sqs!.standIn.callsTo('DeleteMessageBatch').some((c) => c.errorCode === undefined));
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  const succeeded = (s: SpotTerminationStack) => s.core.engine.recentRuns().filter((r) => r.outcome === 'succeeded');

  it('a spot interruption warning on the queue → core → k8s-drain → aws-spot, then the message is deleted', async () => {
    stack = await startSpotTerminationStack({ sqs: true, visibilityTimeoutSeconds: 5 });
    const { queue } = stack.sqs!;
    queue.send(spotInterruptionWarning(stack.instanceId));
    await drained(stack);

    const [run] = stack.core.engine.recentRuns();
    expect(run).toMatchObject({ flow: 'spot-termination', outcome: 'succeeded', eventType: 'aws.ec2.spot.interruption-warning' });
    expect(run!.calls.map((c) => [c.plugin, c.code])).toEqual([['k8s-drain', 'OK'], ['aws-spot', 'OK'], ['log', 'OK']]);
    expect(stack.kube.cluster.node(stack.nodeName)!.spec?.unschedulable).toBe(true);
    expect(stack.kube.cluster.pods(stack.nodeName)).toEqual([]);
    expect([...stack.group.members.keys()]).not.toContain(stack.instanceId);
    expect(stack.group.members.size).toBe(2);
    expect(stack.sqs!.standIn.callsTo('DeleteMessageBatch')).toHaveLength(1);
  });

  it('aws-spot failing once: the message comes back after its visibility timeout and the second run succeeds; exactly one success', async () => {
    stack = await startSpotTerminationStack({ sqs: true, visibilityTimeoutSeconds: 1 });
    const { queue } = stack.sqs!;
    // A permanent AWS error on the plugin's first call: the run fails, the message stays on the queue.
    stack.aws.faults.fail(1, { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 });
    queue.send(spotInterruptionWarning(stack.instanceId));
    await drained(stack);

    const runs = stack.core.engine.recentRuns();
    expect(runs.map((r) => r.outcome)).toEqual(['succeeded', 'failed']);
    expect(runs[1]!.calls.map((c) => [c.plugin, c.code])).toEqual([['k8s-drain', 'OK'], ['aws-spot', 'PERMISSION_DENIED']]);
    expect(succeeded(stack)).toHaveLength(1);
    expect([...stack.group.members.keys()]).not.toContain(stack.instanceId);
    // The message was received twice (the second time a redelivery) and deleted once.
    expect(stack.sqs!.standIn.callsTo('ReceiveMessage').length).toBeGreaterThanOrEqual(2);
    expect(stack.sqs!.standIn.callsTo('DeleteMessageBatch')).toHaveLength(1);
  });

  it('an instance outside any group whose launch template was deleted: the message is kept (not deleted as an unknown instance), and once the template is back the redelivery replaces it', async () => {
    stack = await startSpotTerminationStack({ sqs: true, visibilityTimeoutSeconds: 1 });
    const { aws, kube } = stack;
    const lone = aws.ec2.addInstance({ instanceType: 'm5.large', availabilityZone: 'us-east-1a', launchTemplate: { id: 'lt-0lone', version: '3' } });
    kube.cluster.addNode({ metadata: { name: 'ip-10-0-1-77.ec2.internal' }, spec: { providerID: `aws:///us-east-1a/${lone.instanceId}` } });
    const template = aws.ec2.launchTemplates.get('lt-0lone')!;
    aws.ec2.launchTemplates.delete('lt-0lone');
    stack.sqs!.queue.send(spotInterruptionWarning(lone.instanceId));
    await eventually(() => stack!.core.engine.recentRuns().some((r) => r.outcome === 'failed'));
    // Someone puts the template back; the message, kept, comes back after its visibility timeout.
    aws.ec2.addLaunchTemplate(template);
    await drained(stack);

    const runs = stack.core.engine.recentRuns();
    expect(runs.map((r) => r.outcome)).toEqual(['succeeded', 'failed']);
    expect(runs[1]!.calls.map((c) => [c.plugin, c.code])).toEqual([['k8s-drain', 'OK'], ['aws-spot', 'FAILED_PRECONDITION']]);
    expect(runs[0]!.calls.map((c) => [c.plugin, c.code])).toEqual([['k8s-drain', 'OK'], ['aws-spot', 'OK'], ['log', 'OK']]);
    expect(aws.ec2.instancesTagged('hollowtrees:replaces', lone.instanceId)).toHaveLength(1);
    expect(stack.sqs!.standIn.callsTo('DeleteMessageBatch')).toHaveLength(1);
  });

  it('a drain longer than the visibility timeout: the message is kept hidden, never handed out mid-run, and deleted once', async () => {
    // Pods take 3 s to go (600 grace seconds at 5 ms each); the queue's visibility timeout is 1 s.
    stack = await startSpotTerminationStack({ sqs: true, visibilityTimeoutSeconds: 1, podGraceSeconds: 600, msPerGraceSecond: 5 });
    const { queue } = stack.sqs!;
    const message = queue.send(spotInterruptionWarning(stack.instanceId));
    await drained(stack);

    expect(message.receiveCount).toBe(1);
    const [run] = stack.core.engine.recentRuns();
    expect(run!.outcome).toBe('succeeded');
    expect(run!.calls.find((c) => c.plugin === 'k8s-drain')!.durationMs).toBeGreaterThan(1_500);
    expect(stack.core.engine.recentRuns()).toHaveLength(1);
    expect(stack.sqs!.standIn.callsTo('ChangeMessageVisibilityBatch').length).toBeGreaterThanOrEqual(2);
  });
});
