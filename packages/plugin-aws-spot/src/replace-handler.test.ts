import { Code, PluginClient, PluginError, serve, type CloudEvent, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';
import { AwsApiError, rejectionOf, startAwsStandIn, type AwsStandIn } from '@hollowtrees/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { AwsSpotReplaceHandler, type AwsSpotReplaceOptions } from './replace-handler.js';
import { REGION_EXAMPLE } from './region-name.js';

const TERMINATING = 'autoscaling:EC2_INSTANCE_TERMINATING';
const ORIGINAL_MIN_SIZE = 'hollowtrees:original-min-size';

let aws: AwsStandIn;
let logs: { level: string; message: string; fields: Record<string, unknown> | undefined }[];
const cleanups: Array<() => unknown> = [];

beforeEach(async () => {
  aws = await startAwsStandIn();
  logs = [];
  cleanups.push(() => aws.close());
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const logger: Logger = {
  debug: (message, fields) => logs.push({ level: 'debug', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
};

function handler(options: AwsSpotReplaceOptions = {}): AwsSpotReplaceHandler {
  const h = new AwsSpotReplaceHandler({
    region: 'us-east-1',
    endpoint: aws.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // Retries stay real but do not slow the tests down.
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    logger,
    ...options,
  });
  cleanups.push(() => h.close());
  return h;
}

const context = (attempt = 1): HandleContext => ({ flow: 'spot-replace', attempt, config: {}, deadline: undefined, signal: new AbortController().signal });

type QueryParams = Parameters<AwsStandIn['autoScaling']['actions'][string]>[0];

/** Serves the `action` of `service` (default Auto Scaling) through `wrap`, which may call the stand-in's own handler (`real`) and throw. */
function intercept(
  action: string,
  wrap: (params: QueryParams, real: (params: QueryParams) => Record<string, unknown>) => Record<string, unknown>,
  service: Pick<AwsStandIn['autoScaling'], 'actions'> = aws.autoScaling,
): void {
  const actions = service.actions as Record<string, (params: QueryParams) => Record<string, unknown>>;
  const real = actions[action]!;
  actions[action] = (params) => wrap(params, real);
}

/** An answer lost after the action took effect: a 5xx, as when the connection to Auto Scaling drops on the way back. */
const lostAnswer = (): AwsApiError => new AwsApiError('InternalFailure', 'We encountered an internal error. Please try again.', 500);


const spotEvent = (instanceId: string, id = `evt-${instanceId}`): CloudEvent => ({
  id,
  source: 'test',
  specversion: '1.0',
  type: 'prometheus.server.alert.SpotTerminating',
  data: { labels: { instance_id: instanceId } },
});

const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);

const standalone = (): string =>
  aws.ec2.addInstance({
    instanceType: 'm5.large',
    subnetId: 'subnet-0feed',
    launchTemplate: { id: 'lt-0web', version: '7' },
    tags: { Name: 'web-1', team: 'infra' },
  }).instanceId;

const replacementsOf = (instanceId: string) => aws.ec2.instancesTagged('hollowtrees:replaces', instanceId);

/**
 * A detach batch stuck retrying a throttled DetachInstances (until `first` is aborted), so a
 * second call must wait behind it; the plugin reads call deadlines on `clock`, a manual one,
 * and answers 500 ms before them. (A second call is on the clock once its instance is looked up:
 * wait for that longer than vitest's default 1 s, a round trip a busy machine can outlast.)
 */
async function stuckDetach() {
  const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 4, minSize: 0 });
  const [busy, queued] = group.members.keys();
  aws.faults.throttle(1_000, { action: 'DetachInstances' });
  const clock = manualClock();
  const h = handler({ retry: { maxAttempts: 1_000, baseDelayMs: 20, maxDelayMs: 20 }, replyMarginMs: 500, clock });
  const first = new AbortController();
  const stuck = rejection(h.handle(spotEvent(busy!), { ...context(), signal: first.signal }));
  await vi.waitFor(() => expect(aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
  return { group, queued: queued!, clock, h, first, stuck };
}

describe('a group member (strategy asg-detach)', () => {
  it('is detached with the desired capacity kept, so the group launches a replacement', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 1 });
    const [old] = group.members.keys();
    const result = await handler().handle(spotEvent(old!), context());
    expect(result).toMatchObject({
      status: 'ok',
      attributes: { auto_scaling_group: 'workers', replacement_requested: 'true', strategy: 'asg-detach', duration_ms: expect.stringMatching(/^\d+$/) },
    });
    expect(aws.callsTo('DetachInstances')[0]?.params).toMatchObject({ ShouldDecrementDesiredCapacity: 'false', 'InstanceIds.member.1': old });
    expect(group.desiredCapacity).toBe(3);
    expect(group.members.has(old!)).toBe(false);
    expect(group.members.size).toBe(3);
    expect(aws.ec2.instances.get(old!)?.tags['hollowtrees:detached-from']).toBe('workers');
    expect(aws.ec2.fleets).toHaveLength(0);
  });

  it('lowers MinSize for the detach when the group is at its minimum, and restores it', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize)).toEqual(['1', '2']);
    // The original is on the group before MinSize is lowered, and taken off once it is back.
    expect(aws.calls.map((c) => c.action).slice(-5)).toEqual(['CreateOrUpdateTags', 'UpdateAutoScalingGroup', 'DetachInstances', 'UpdateAutoScalingGroup', 'DeleteTags']);
    expect(aws.callsTo('CreateOrUpdateTags')[0]?.params).toMatchObject({
      'Tags.member.1.ResourceId': 'workers',
      'Tags.member.1.ResourceType': 'auto-scaling-group',
      'Tags.member.1.Key': ORIGINAL_MIN_SIZE,
      'Tags.member.1.Value': '2',
      'Tags.member.1.PropagateAtLaunch': 'false',
    });
    expect(aws.callsTo('DeleteTags')[0]?.params).toMatchObject({ 'Tags.member.1.Key': ORIGINAL_MIN_SIZE, 'Tags.member.1.Value': '2' });
    expect(group.tags.size).toBe(0);
    expect(group.minSize).toBe(2);
    expect(group.desiredCapacity).toBe(2);
    expect(group.members.has(old!)).toBe(false);
  });

  it('restores MinSize when the call is cut off (deadline or cancel) during DetachInstances', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    // DetachInstances is throttled for as long as the test needs: the call is still in it when the deadline fires.
    aws.faults.throttle(1_000, { action: 'DetachInstances' });
    const h = handler({ retry: { maxAttempts: 1_000, baseDelayMs: 20, maxDelayMs: 20, random: () => 1 } });
    const controller = new AbortController();
    const pending = rejection(h.handle(spotEvent(old!), { ...context(), signal: controller.signal }));
    await vi.waitFor(() => expect(aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    expect(group.minSize).toBe(1);
    controller.abort(new PluginError(Code.DeadlineExceeded, 'deadline exceeded'));

    // The caller is answered at once; its batch, with no caller left, stops and restores on its own signal.
    const err = await pending;
    expect(err.code).toBe(Code.DeadlineExceeded);
    await vi.waitFor(() =>
      expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => [c.params.MinSize, c.errorCode])).toEqual([
        ['1', undefined],
        ['2', undefined],
      ]),
    );
    await vi.waitFor(() => expect(aws.callsTo('DeleteTags')).toHaveLength(1));
    expect(group.minSize).toBe(2);
    expect(group.tags.has(ORIGINAL_MIN_SIZE)).toBe(false);
    expect(group.members.has(old!)).toBe(true);
    expect(group.desiredCapacity).toBe(2);
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('finishes the MinSize restore of a batch whose callers have gone before close() resolves (a shutdown)', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    // DetachInstances is never answered, and each call gets one attempt (--max-attempts 1): a restore cut off by the shutdown is not re-sent.
    aws.faults.noAnswer(1, { action: 'DetachInstances' });
    const h = handler({ retry: { maxAttempts: 1 } });
    const controller = new AbortController();
    const pending = rejection(h.handle(spotEvent(old!), { ...context(), signal: controller.signal }));
    await vi.waitFor(() => expect(aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    // Every call from now on is held 200 ms after it arrives: the plugin shuts down while the restore is on the wire.
    let arrived = 0;
    const wait = aws.latency.wait.bind(aws.latency);
    aws.latency.wait = () => (arrived++, wait());
    aws.latency.set(200);
    controller.abort(new PluginError(Code.DeadlineExceeded, 'deadline exceeded'));
    expect((await pending).code).toBe(Code.DeadlineExceeded);
    await vi.waitFor(() => expect(arrived).toBe(1), { timeout: 5_000, interval: 5 });

    await h.close();
    expect(group.minSize).toBe(2);
    expect(group.tags.has(ORIGINAL_MIN_SIZE)).toBe(false);
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('leaves the original MinSize tag when restoring fails, and a new handler (a restart) restores it with the next detach from the group', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [first, second] = group.members.keys();
    const before = handler({ retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 50, random: () => 1 } });
    // The first DetachInstances is throttled: while it waits to retry, the restore that follows is made to fail.
    aws.faults.throttle(1, { action: 'DetachInstances' });
    const pending = before.handle(spotEvent(first!), context());
    await vi.waitFor(() => expect(aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    aws.faults.fail(1, { code: 'AccessDenied', message: 'User is not authorized to perform: autoscaling:UpdateAutoScalingGroup', status: 403 }, { action: 'UpdateAutoScalingGroup' });
    const result = await pending;
    expect(result.status).toBe('ok');
    expect(result.message).toMatch(/restoring MinSize 2 failed, set it back by hand or let the next detach from the group do it \(tag hollowtrees:original-min-size=2\)/);
    expect(group.minSize).toBe(1);
    expect(group.tags.get(ORIGINAL_MIN_SIZE)).toEqual({ value: '2', propagateAtLaunch: false });
    expect(aws.callsTo('DeleteTags')).toHaveLength(0);
    await before.close();

    // A new handler knows nothing of the first one: the tag tells it that 1 is a lowered MinSize, and 2 the original.
    const next = await handler().handle(spotEvent(second!), context());
    expect(next.message).not.toMatch(/failed/);
    expect(group.minSize).toBe(2);
    expect(group.tags.has(ORIGINAL_MIN_SIZE)).toBe(false);
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => [c.params.MinSize, c.errorCode])).toEqual([
      ['1', undefined],
      ['2', 'AccessDenied'],
      ['2', undefined],
    ]);
    // The tag was already there: written once, by the first detach.
    expect(aws.callsTo('CreateOrUpdateTags')).toHaveLength(1);
    expect(aws.callsTo('DeleteTags').map((c) => c.params['Tags.member.1.Value'])).toEqual(['2']);
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/still lowered by an earlier detach/), fields: expect.objectContaining({ min_size: 2, current_min_size: 1 }) }));
    expect(group.members.has(first!)).toBe(false);
    expect(group.members.has(second!)).toBe(false);
    expect(group.desiredCapacity).toBe(2);
  });

  it('takes a tag at or below the current MinSize for stale: MinSize was set back since, and the tag goes', async () => {
    // Set back by hand to 2, then raised to 3; the tag of the failed restore is still on the group.
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 3, tags: { [ORIGINAL_MIN_SIZE]: '2' } });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    // 3 is the original now: lowered to 2 for the detach and put back to 3, not to the tag's 2.
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize)).toEqual(['2', '3']);
    expect(aws.callsTo('CreateOrUpdateTags')[0]?.params['Tags.member.1.Value']).toBe('3');
    expect(group.minSize).toBe(3);
    expect(group.tags.size).toBe(0);
  });

  it('removes a stale tag also when no lowering is needed', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 1, tags: { [ORIGINAL_MIN_SIZE]: 'one' } });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    expect(aws.callsTo('UpdateAutoScalingGroup')).toHaveLength(0);
    expect(aws.callsTo('CreateOrUpdateTags')).toHaveLength(0);
    expect(aws.callsTo('DeleteTags')[0]?.params).toMatchObject({ 'Tags.member.1.Key': ORIGINAL_MIN_SIZE, 'Tags.member.1.Value': 'one' });
    expect(group.tags.size).toBe(0);
    expect(group.minSize).toBe(1);
  });

  it('does not lower MinSize when the original cannot be tagged', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    aws.faults.fail(1, { code: 'AccessDenied', message: 'User is not authorized to perform: autoscaling:CreateOrUpdateTags', status: 403 }, { action: 'CreateOrUpdateTags' });
    const err = await rejection(handler().handle(spotEvent(old!), context()));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toContain('Auto Scaling CreateOrUpdateTags failed: AccessDenied');
    expect(aws.callsTo('UpdateAutoScalingGroup')).toHaveLength(0);
    expect(aws.callsTo('DetachInstances')).toHaveLength(0);
    expect(group.minSize).toBe(2);
    expect(group.members.has(old!)).toBe(true);
  });

  it('succeeds when only removing the tag after the restore fails: the next detach takes the tag for stale', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [first, second] = group.members.keys();
    aws.faults.fail(1, { code: 'AccessDenied', message: 'User is not authorized to perform: autoscaling:DeleteTags', status: 403 }, { action: 'DeleteTags' });
    const result = await handler().handle(spotEvent(first!), context());
    expect(result.message).not.toMatch(/failed/);
    expect(group.minSize).toBe(2);
    expect(group.tags.get(ORIGINAL_MIN_SIZE)?.value).toBe('2');
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', message: 'could not remove the original MinSize tag from the group' }));

    await handler().handle(spotEvent(second!), context());
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize)).toEqual(['1', '2', '1', '2']);
    // Already on the group with the right value: not written again, removed this time.
    expect(aws.callsTo('CreateOrUpdateTags')).toHaveLength(1);
    expect(group.tags.size).toBe(0);
    expect(group.minSize).toBe(2);
  });

  it('completes its pending termination lifecycle action with CONTINUE, so the group replaces it now', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    const result = await handler().handle(spotEvent(old!), context());
    expect(result.attributes).toMatchObject({ auto_scaling_group: 'workers', lifecycle_hooks_completed: 'drain-first', strategy: 'asg-detach' });
    expect(aws.autoScaling.lifecycleActions).toEqual([expect.objectContaining({ instanceId: old, hookName: 'drain-first', result: 'CONTINUE' })]);
    expect(aws.callsTo('DetachInstances')).toHaveLength(0);
    expect(group.members.size).toBe(2);
  });

  it('is detached once when the same event comes twice, also to a restarted plugin (the detached-from tag)', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    const again = await handler().handle(spotEvent(old!), context());
    expect(again).toMatchObject({ status: 'ok', attributes: { auto_scaling_group: 'workers', replacement_requested: 'true' } });
    expect(again.message).toMatch(/already detached/);
    expect(aws.callsTo('DetachInstances')).toHaveLength(1);
    expect(aws.ec2.fleets).toHaveLength(0);
  });

  it('answers a retry that finds its member still Detaching (a load balancer draining it) already detached, not skipped', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    // As Auto Scaling lists a member while its target group deregisters it (300 s by default).
    intercept('DetachInstances', (params, real) => {
      const out = real(params);
      group.members.set(old!, { instanceId: old!, lifecycleState: 'Detaching', healthStatus: 'Healthy' });
      return out;
    });
    await handler().handle(spotEvent(old!), context());
    // Core's retry after the first answer was lost, on a restarted plugin or another replica.
    const again = await handler().handle(spotEvent(old!), context(2));
    expect(again).toMatchObject({ status: 'ok', attributes: { auto_scaling_group: 'workers', replacement_requested: 'true' } });
    expect(again.message).toBe(`${old} was already detached from Auto Scaling group workers`);
    expect(aws.callsTo('DetachInstances')).toHaveLength(1);
  });

  it('still skips a member Detaching without this plugin’s tag: someone else detached it, perhaps shrinking the group', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    group.members.get(old!)!.lifecycleState = 'Detaching';
    expect(await handler().handle(spotEvent(old!), context())).toMatchObject({ status: 'skipped', message: `${old} is Detaching in Auto Scaling group workers: nothing to detach` });
  });

  it('makes a call about an instance being replaced right now wait for that replacement instead of starting another', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    aws.latency.set(20);
    const h = handler();
    const [first, second] = await Promise.all([h.handle(spotEvent(old!, 'replace-flow'), context()), h.handle(spotEvent(old!, 'drain-flow'), context())]);
    expect(first.message).toMatch(/^detached /);
    expect(second.message).toBe(`replacement already requested by this process: ${first.message}`);
    expect(aws.callsTo('DescribeInstances')).toHaveLength(1);
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(1);
    expect(aws.callsTo('DetachInstances')).toHaveLength(1);
  });

  it('remembers a requested replacement: a retried or repeated call is answered without calling AWS', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    const h = handler();
    const first = await h.handle(spotEvent(old!), context());
    const calls = aws.calls.length;
    const retried = await h.handle(spotEvent(old!), { ...context(), attempt: 2 });
    const otherEvent = await h.handle(spotEvent(old!, 'notice-of-the-same-instance'), context());
    for (const again of [retried, otherEvent]) {
      expect(again).toMatchObject({ status: 'ok', attributes: { ...first.attributes, duration_ms: expect.any(String) } });
      expect(again.message).toBe(`replacement already requested by this process: ${first.message}`);
    }
    expect(aws.calls).toHaveLength(calls);
  });

  it('on an injected clock: remembers a replacement for rememberMs of that clock, then asks AWS again; duration_ms is read from it', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    const clock = manualClock();
    const h = handler({ clock, rememberMs: 60_000 });
    const first = await h.handle(spotEvent(old!), context());
    expect(first.attributes?.duration_ms).toBe('0');
    const calls = aws.calls.length;
    clock.advance(59_999);
    expect((await h.handle(spotEvent(old!), context())).message).toBe(`replacement already requested by this process: ${first.message}`);
    expect(aws.calls).toHaveLength(calls);
    clock.advance(1);
    const later = await h.handle(spotEvent(old!), context());
    expect(later.message).not.toMatch(/^replacement already requested by this process/);
    expect(aws.callsTo('DescribeInstances').length).toBeGreaterThan(1);
  });
});

describe('a wave of members of one group', () => {
  it.each([2, 3, 5])('detaches %i members of a group at MinSize called at once in one batch, MinSize lowered and restored once (issue 20)', async (n) => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: n + 1, minSize: n + 1 });
    const leaving = [...group.members.keys()].slice(0, n);
    // Every call takes a while, so detaches that did not wait for each other would overlap.
    aws.latency.set(10);
    const h = handler();
    const results = await Promise.allSettled(leaving.map((id) => h.handle(spotEvent(id), context())));
    // Correct: every one detached, nothing refused, the group as it was.
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.status : (r.reason as Error).message))).toEqual(leaving.map(() => 'ok'));
    expect(results.map((r) => (r.status === 'fulfilled' ? (r.value.message ?? '') : '')).filter((m) => /failed/.test(m))).toEqual([]);
    expect(aws.calls.filter((c) => c.errorCode !== undefined)).toEqual([]);
    expect(leaving.filter((id) => group.members.has(id))).toEqual([]);
    expect(group.minSize).toBe(n + 1);
    expect(group.tags.size).toBe(0);
    expect(group.desiredCapacity).toBe(n + 1);
    // One batch: the group read once, MinSize lowered once to what all of them need, one DetachInstances.
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(1);
    expect(aws.callsTo('DetachInstances').map((c) => Object.keys(c.params).filter((k) => k.startsWith('InstanceIds.member.')).length)).toEqual([n]);
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize)).toEqual(['1', String(n + 1)]);
    expect(aws.callsTo('CreateOrUpdateTags').map((c) => c.params['Tags.member.1.Value'])).toEqual([String(n + 1)]);
    expect(aws.callsTo('DeleteTags')).toHaveLength(1);
  });

  it('detaches a wave in DetachInstances of up to 20, looked up in one call, tagged in one call', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 50, minSize: 0, maxSize: 100 });
    const leaving = [...group.members.keys()].slice(0, 45);
    const h = handler();
    const results = await Promise.all(leaving.map((id) => h.handle(spotEvent(id), context())));
    expect(results.every((r) => r.status === 'ok')).toBe(true);
    expect(aws.callsTo('DetachInstances').map((c) => Object.keys(c.params).filter((k) => k.startsWith('InstanceIds.member.')).length).sort((a, b) => b - a)).toEqual([20, 20, 5]);
    expect(aws.callsTo('DescribeInstances')).toHaveLength(1);
    // Auto Scaling's tag names the group: no DescribeAutoScalingInstances needed.
    expect(aws.callsTo('DescribeAutoScalingInstances')).toHaveLength(0);
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(1);
    expect(aws.callsTo('CreateTags')).toHaveLength(1);
    // MinSize 0 allows every detach: no lowering, no tag on the group.
    expect(aws.callsTo('UpdateAutoScalingGroup')).toHaveLength(0);
    expect(leaving.filter((id) => group.members.has(id))).toEqual([]);
    expect(leaving.every((id) => aws.ec2.instances.get(id)?.tags['hollowtrees:detached-from'] === 'workers')).toBe(true);
  });


  it('answers a detach still queued near its deadline with RESOURCE_EXHAUSTED before the deadline, and does nothing for it', async () => {
    const { group, queued, clock, h, first, stuck } = await stuckDetach();
    const deadline = new Date(clock.now() + 1_500);
    let answered = false;
    const queuedCall = rejection(h.handle(spotEvent(queued!), { ...context(), deadline })).finally(() => (answered = true));
    await vi.waitFor(() => expect(clock.sleeping).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    clock.advance(999);
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBe(false);
    clock.advance(1);
    const err = await queuedCall;
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/still queued .* before the call's deadline; nothing was done for it, retry/);
    expect(aws.ec2.instances.get(queued!)?.tags['hollowtrees:detached-from']).toBeUndefined();
    first.abort(new PluginError(Code.Canceled, 'cancelled'));
    expect((await stuck).code).toBe(Code.Canceled);
    expect(group.members.has(queued!)).toBe(true);
  });

  it('does not look the instance up again when core retries a call that failed', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    aws.faults.unavailable(1, { action: 'DetachInstances' });
    const h = handler({ retry: { maxAttempts: 1 } });
    const failed = await rejection(h.handle(spotEvent(old!), context()));
    expect(failed.code).toBe(Code.Unavailable);
    const retried = await h.handle(spotEvent(old!), { ...context(), attempt: 2 });
    expect(retried).toMatchObject({ status: 'ok', attributes: { replacement_requested: 'true' } });
    expect(aws.callsTo('DescribeInstances')).toHaveLength(1);
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['ServiceUnavailable', undefined]);
  });

  it('leaves a Terminating:Wait member’s lifecycle actions pending until the drain has run, with completeLifecycleHooks: after-drain', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    const h = handler({ completeLifecycleHooks: 'after-drain' });
    const early = await h.handle(spotEvent(old!), context());
    expect(early).toMatchObject({ status: 'skipped', message: expect.stringMatching(/left pending until the node is drained/) });
    expect(aws.callsTo('CompleteLifecycleAction')).toHaveLength(0);
    // The same flow after k8s-drain: its answer is merged into the event's labels.
    const drained = { ...spotEvent(old!), data: { labels: { instance_id: old!, node: 'n1', pods_evicted: '3', pods_remaining: '0' } } };
    const after = await h.handle(drained, context());
    expect(after.attributes).toMatchObject({ lifecycle_hooks_completed: 'drain-first', replacement_requested: 'true' });
    expect(aws.autoScaling.lifecycleActions).toEqual([expect.objectContaining({ instanceId: old, result: 'CONTINUE' })]);
  });

  it('logs when calls wait for a connection: the SDK’s socket usage at capacity, with the service', async () => {
    for (const name of ['a', 'b', 'c']) aws.autoScaling.addGroup({ name, desiredCapacity: 1, minSize: 0 });
    const members = [...aws.autoScaling.groups.values()].map((g) => [...g.members.keys()][0]!);
    // One connection, three groups' batches at once, each call slower than the SDK's 1 s check.
    aws.latency.set(1_300);
    const h = handler({ maxSockets: 1 });
    const replaced = Promise.all(members.map((id) => h.handle(spotEvent(id), context())));
    await vi.waitFor(
      () =>
        expect(logs).toContainEqual(
          expect.objectContaining({
            level: 'warn',
            message: 'AWS SDK: socket usage at capacity, calls are waiting for a connection (raise --max-sockets)',
            fields: expect.objectContaining({ service: 'autoscaling', max_sockets: 1, sdk_message: expect.stringMatching(/socket usage at capacity=1 and 2 additional requests are enqueued/) }),
          }),
        ),
      { timeout: 10_000, interval: 20 },
    );
    aws.latency.set(0);
    expect((await replaced).map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
  });
});

describe('an instance outside a group (strategy fleet)', () => {
  it('is replaced by an instant spot fleet from the same launch template, diversified over sibling types', async () => {
    const old = standalone();
    const result = await handler().handle(spotEvent(old), context());
    const [fleet] = aws.ec2.fleets;
    expect(fleet).toMatchObject({ capacityType: 'spot', launchTemplate: { id: 'lt-0web', version: '7' } });
    expect(fleet?.instanceTypes).toEqual(['m5.large', 'm5a.large', 'm5n.large', 'm6i.large', 'm6a.large', 'm7i.large', 'm7a.large']);
    const params = aws.callsTo('CreateFleet')[0]?.params;
    expect(params).toMatchObject({ Type: 'instant', 'SpotOptions.AllocationStrategy': 'capacity-optimized', 'LaunchTemplateConfigs.1.Overrides.1.SubnetId': 'subnet-0feed' });
    const newId = fleet?.instances[0]?.instanceId;
    expect(result).toMatchObject({
      status: 'ok',
      attributes: { replacement_instance_id: newId, replacement_capacity_type: 'spot', replacement_instance_type: 'm5.large', strategy: 'fleet' },
    });
    expect(aws.ec2.instances.get(newId!)).toMatchObject({ lifecycle: 'spot', subnetId: 'subnet-0feed', launchTemplate: { id: 'lt-0web', version: '7' } });
  });

  it('answers FAILED_PRECONDITION, not NOT_FOUND, when the launch template is gone: the instance is known, a setting is wrong', async () => {
    const old = standalone();
    aws.ec2.launchTemplates.delete('lt-0web');
    const err = await rejection(handler().handle(spotEvent(old), context()));
    // NOT_FOUND would tell core's SQS source the instance is unknown, and the message would be deleted with its replacement undone.
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/lt-0web, does not exist/);
    expect(aws.callsTo('CreateFleet').map((c) => c.errorCode)).toEqual(['InvalidLaunchTemplateId.NotFound']);
  });

  it('copies the tags and adds hollowtrees:replaces=<old id>', async () => {
    const old = standalone();
    const result = await handler().handle(spotEvent(old), context());
    const replacement = aws.ec2.instances.get(result.attributes?.replacement_instance_id ?? '');
    expect(replacement?.tags).toMatchObject({ Name: 'web-1', team: 'infra', 'hollowtrees:replaces': old });
    // AWS's own tags are set by EC2 for the new instance, not copied from the old one.
    expect(replacement?.tags['aws:ec2:fleet-id']).toBe(aws.ec2.fleets[0]?.fleetId);
  });

  it.each(['InsufficientInstanceCapacity', 'UnfulfillableCapacity'] as const)('falls back to on-demand when spot answers %s for every type', async (errorCode) => {
    const old = standalone();
    const types = ['m5.large', 'm5a.large'];
    aws.ec2.noSpotCapacity(types, errorCode);
    const result = await handler({ instanceTypes: types }).handle(spotEvent(old), context());
    expect(aws.ec2.fleets.map((f) => [f.capacityType, f.instances.length])).toEqual([
      ['spot', 0],
      ['on-demand', 1],
    ]);
    expect(aws.callsTo('CreateFleet')[1]?.params['TargetCapacitySpecification.DefaultTargetCapacityType']).toBe('on-demand');
    expect(result.attributes).toMatchObject({ replacement_capacity_type: 'on-demand', replacement_instance_id: aws.ec2.fleets[1]?.instances[0]?.instanceId });
    expect(aws.ec2.instances.get(result.attributes?.replacement_instance_id ?? '')?.lifecycle).toBe('on-demand');
  });

  it('fails with RESOURCE_EXHAUSTED (retryable) when neither spot nor on-demand has capacity', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large']);
    aws.ec2.noOnDemandCapacity(['m5.large']);
    const err = await rejection(handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(old), context()));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toMatch(/InsufficientInstanceCapacity: We currently do not have sufficient m5.large capacity/);
  });

  it('launches on core’s retry once capacity is back: a fleet that launched nothing does not pin its client token to that answer', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large']);
    aws.ec2.noOnDemandCapacity(['m5.large']);
    const h = handler({ instanceTypes: ['m5.large'] });
    expect((await rejection(h.handle(spotEvent(old), context()))).code).toBe(Code.ResourceExhausted);
    aws.ec2.capacityRestored(['m5.large']);
    // EC2 answers a repeated client token with the fleet it made then, empty: the retry must ask anew.
    const result = await h.handle(spotEvent(old), { ...context(), attempt: 2 });
    expect(result.attributes).toMatchObject({ replacement_capacity_type: 'spot' });
    expect(aws.ec2.instancesTagged('hollowtrees:replaces', old)).toHaveLength(1);
    // The retry of a request whose answer was lost still gets its fleet back rather than a second one.
    const again = await handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(old), { ...context(), attempt: 3 });
    expect(again.attributes?.replacement_instance_id).toBe(result.attributes?.replacement_instance_id);
    expect(aws.ec2.instancesTagged('hollowtrees:replaces', old)).toHaveLength(1);
  });

  it('stays RESOURCE_EXHAUSTED (retryable) when some types have no capacity and the first listed is not offered in the zone', async () => {
    const old = standalone();
    aws.ec2.unsupportedInstanceTypes(['m7a.large']);
    aws.ec2.noSpotCapacity(['m5.large']);
    aws.ec2.noOnDemandCapacity(['m5.large']);
    const err = await rejection(handler({ instanceTypes: ['m7a.large', 'm5.large'] }).handle(spotEvent(old), context()));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toMatch(/m7a\.large \(spot\): Unsupported: .*; m5\.large \(spot\): InsufficientInstanceCapacity: /);
  });

  it.each([
    ['InternalError', 'UNAVAILABLE', Code.Unavailable],
    ['ServiceUnavailable', 'UNAVAILABLE', Code.Unavailable],
    ['RequestLimitExceeded', 'RESOURCE_EXHAUSTED', Code.ResourceExhausted],
    ['Unsupported', 'FAILED_PRECONDITION', Code.FailedPrecondition],
    ['InvalidFleetConfiguration', 'INVALID_ARGUMENT', Code.InvalidArgument],
    ['InvalidParameterValue', 'INVALID_ARGUMENT', Code.InvalidArgument],
  ] as const)('answers a fleet whose every override failed with %s (inside its 200 answer) with %s, naming the code', async (errorCode, _name, code) => {
    const old = standalone();
    aws.ec2.failOverrides(['m5.large', 'm5a.large'], errorCode, { errorMessage: 'what EC2 said' });
    const err = await rejection(handler({ instanceTypes: ['m5.large', 'm5a.large'] }).handle(spotEvent(old), context()));
    expect([err.code, err.message]).toEqual([code, expect.stringContaining(`m5.large (spot): ${errorCode}: what EC2 said`)]);
  });

  it('stays UNAVAILABLE (retryable) when one override failed for good and another with EC2’s InternalError', async () => {
    const old = standalone();
    aws.ec2.unsupportedInstanceTypes(['m7a.large']);
    aws.ec2.failOverrides(['m5.large'], 'InternalError', { errorMessage: 'An internal error has occurred' });
    const h = handler({ instanceTypes: ['m7a.large', 'm5.large'] });
    expect((await rejection(h.handle(spotEvent(old), context()))).code).toBe(Code.Unavailable);
    aws.ec2.capacityRestored(['m5.large']);
    expect((await h.handle(spotEvent(old), { ...context(), attempt: 2 })).attributes).toMatchObject({ replacement_instance_type: 'm5.large' });
  });

  it('stays RESOURCE_EXHAUSTED (retryable) when spot has no capacity and the on-demand fallback is refused for good (a vCPU quota)', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large']);
    aws.ec2.failOverrides(['m5.large'], 'VcpuLimitExceeded', { capacityType: 'on-demand' });
    const h = handler({ instanceTypes: ['m5.large'] });
    const err = await rejection(h.handle(spotEvent(old), context()));
    // Both answers are named: why spot failed (so the retry may pass) and why on-demand did.
    expect([err.code, err.message]).toEqual([Code.ResourceExhausted, expect.stringMatching(/m5\.large \(spot\): InsufficientInstanceCapacity: .*; m5\.large \(on-demand\): VcpuLimitExceeded: /)]);
  });

  it.each(['SpotMaxPriceTooLow', 'MaxSpotInstanceCountExceeded', 'MaxSpotFleetRequestCountExceeded'] as const)('falls back to on-demand when spot answers %s for every type: what spot alone lacks', async (errorCode) => {
    const old = standalone();
    aws.ec2.failOverrides(['m5.large'], errorCode, { capacityType: 'spot' });
    const result = await handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(old), context());
    expect(aws.ec2.fleets.map((f) => [f.capacityType, f.instances.length])).toEqual([
      ['spot', 0],
      ['on-demand', 1],
    ]);
    expect(result.attributes).toMatchObject({ replacement_capacity_type: 'on-demand' });
  });

  it('falls back to on-demand when EC2 refuses the spot fleet request itself for the spot fleet request quota: the node goes in two minutes, the quota does not', async () => {
    const old = standalone();
    const refusal = { code: 'MaxSpotFleetRequestCountExceeded', message: 'Max spot fleet request count exceeded', status: 400 };
    aws.faults.fail(1, refusal, { action: 'CreateFleet' });
    const result = await handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(old), context());
    expect(aws.ec2.fleets.map((f) => [f.capacityType, f.instances.length])).toEqual([['on-demand', 1]]);
    expect(result.attributes).toMatchObject({ replacement_capacity_type: 'on-demand' });
    // When on-demand is refused too (the quota counting fleets of every kind), both refusals are named, and no retry mends it.
    const other = standalone();
    aws.ec2.failOverrides(['m5.large'], 'VcpuLimitExceeded', { capacityType: 'on-demand' });
    aws.faults.fail(1, refusal, { action: 'CreateFleet' });
    const err = await rejection(handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(other), context()));
    expect([err.code, err.message]).toEqual([Code.FailedPrecondition, expect.stringMatching(/\(spot\): MaxSpotFleetRequestCountExceeded: Max spot fleet request count exceeded; m5\.large \(on-demand\): VcpuLimitExceeded: /)]);
  });

  it('launches no second replacement when the call is cut off while its on-demand fallback (spot refused whole for its quota) is under way, and spot is back for the retry', async () => {
    const old = standalone();
    aws.faults.fail(1, { code: 'MaxSpotFleetRequestCountExceeded', message: 'Max spot fleet request count exceeded', status: 400 }, { action: 'CreateFleet' });
    // The on-demand CreateFleet is held on its way into EC2 when core gives up on the call (held, not slowed by a
    // latency the test sleeps into: on a loaded machine the sleep outlasted it, and the call was answered first).
    let letGo = (): void => {};
    // Holds take calls in the order set: the spot request goes through, the on-demand one is held.
    aws.faults.hold(1, Promise.resolve(), { action: 'CreateFleet' });
    const launching = aws.faults.hold(1, new Promise<void>((resolve) => (letGo = resolve)), { action: 'CreateFleet' });
    cleanups.push(() => letGo());
    const h = handler({ instanceTypes: ['m5.large'] });
    const controller = new AbortController();
    const first = rejection(h.handle(spotEvent(old), { ...context(), signal: controller.signal }));
    await vi.waitFor(() => expect(aws.callsTo('CreateFleet')).toHaveLength(1), { timeout: 5_000 });
    await vi.waitFor(() => expect(launching.hits).toBe(1), { timeout: 5_000, interval: 5 });
    controller.abort(new PluginError(Code.DeadlineExceeded, 'deadline exceeded'));
    expect((await first).code).toBe(Code.DeadlineExceeded);
    // The retry comes at once, the spot fleet request quota freed meanwhile, while that request is still held; EC2 then
    // launches it all the same.
    const retry = await h.handle(spotEvent(old), context(2));
    letGo();
    await vi.waitFor(() => expect(aws.callsTo('CreateFleet').length).toBeGreaterThanOrEqual(3), { timeout: 5_000 });
    expect(retry.attributes).toMatchObject({ replacement_capacity_type: 'on-demand' });
    expect(replacementsOf(old)).toHaveLength(1);
  });

  it('stays FAILED_PRECONDITION, asking once, when spot-only and EC2 refuses the spot fleet request for its quota', async () => {
    const old = standalone();
    aws.faults.fail(2, { code: 'MaxSpotFleetRequestCountExceeded', message: 'Max spot fleet request count exceeded', status: 400 }, { action: 'CreateFleet' });
    const err = await rejection(handler({ instanceTypes: ['m5.large'], onDemandFallback: false }).handle(spotEvent(old), context()));
    expect([err.code, err.message]).toEqual([Code.FailedPrecondition, expect.stringContaining('EC2 CreateFleet failed: MaxSpotFleetRequestCountExceeded')]);
    expect(aws.ec2.fleets).toHaveLength(0);
  });

  it('replaces an instance carrying EC2’s 50 user tags, keeping the namespaced ones (the cluster’s) and saying which it left out: its 51 were refused', async () => {
    const tags = Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`team-${String(i).padStart(2, '0')}`, 'x']));
    const old = aws.ec2.addInstance({ launchTemplate: { id: 'lt-1', version: '1' }, tags: { ...tags, 'kubernetes.io/cluster/prod': 'owned' } }).instanceId;
    const result = await handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(old), context());
    const replacement = replacementsOf(old);
    expect(replacement.map((i) => i.instanceId)).toEqual([result.attributes?.replacement_instance_id]);
    expect(replacement[0]?.tags).toMatchObject({ 'kubernetes.io/cluster/prod': 'owned', 'team-47': 'x' });
    expect(replacement[0]?.tags).not.toHaveProperty('team-48');
    expect(result.message).toContain('tags left out (EC2 takes 50 a resource): team-48');
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ instance_id: old, tags_left_out: ['team-48'] }) }));
  });

  it('pool mode launches its own replacement outside the pool for a member whose per-instance detach it met in flight: a detach gives none there', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 0 });
    const [a, b] = [...group.members.keys()];
    aws.ec2.launchDelayMs = 0;
    // The detach waits a second for others to join its batch: the pool call meets it in flight.
    const h = handler({ coalesceMs: 1_000, instanceTypes: ['m5.large', 'm5a.large'], pool: { pollIntervalMs: 20 } });
    const detach = h.handle(spotEvent(a!), context());
    await vi.waitFor(() => expect(aws.callsTo('DescribeInstances').length).toBeGreaterThan(0), { timeout: 5_000 });
    const surge: CloudEvent = { ...spotEvent(a!, 'surge'), type: 'aws.ec2.spot.price-surge', data: { labels: { availability_zone: 'us-east-1a', instance_type: 'm5.large' } } };
    const pool = await h.handle(surge, { ...context(), config: { mode: 'pool' } });
    expect(await detach).toMatchObject({ status: 'ok', attributes: { strategy: 'asg-detach' } });
    expect([replacementsOf(a!).length, replacementsOf(b!).length]).toEqual([1, 1]);
    expect(pool.attributes).toMatchObject({ instances: '2', replacements_running: '2' });
  });

  it('fails with FAILED_PRECONDITION naming SpotMaxPriceTooLow when spot-only: the launch template’s max price is a configuration to change', async () => {
    const old = standalone();
    aws.ec2.failOverrides(['m5.large', 'm5a.large'], 'SpotMaxPriceTooLow', { errorMessage: 'Your Spot request price of 0.001 is lower than the minimum required Spot request fulfillment price of 0.0359.' });
    const err = await rejection(handler({ instanceTypes: ['m5.large', 'm5a.large'], onDemandFallback: false }).handle(spotEvent(old), context()));
    expect([err.code, err.message]).toEqual([Code.FailedPrecondition, expect.stringContaining('m5.large (spot): SpotMaxPriceTooLow: Your Spot request price')]);
    expect(aws.ec2.fleets).toHaveLength(1);
  });

  it('does not fall back when configured spot-only', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large']);
    const err = await rejection(handler({ instanceTypes: ['m5.large'], onDemandFallback: false }).handle(spotEvent(old), context()));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(aws.ec2.fleets).toHaveLength(1);
  });

  it('fails with FAILED_PRECONDITION when the instance has no launch template', async () => {
    const old = aws.ec2.addInstance().instanceId;
    const err = await rejection(handler().handle(spotEvent(old), context()));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/not launched from a launch template/);
  });
});

describe('idempotency', () => {
  it('launches one replacement when the same event comes twice (the replaces tag)', async () => {
    const old = standalone();
    const first = await handler().handle(spotEvent(old), context());
    // A second process (or this one after a restart) knows nothing of the first: the tag tells it.
    const second = await handler().handle(spotEvent(old), context());
    expect(second.attributes?.replacement_instance_id).toBe(first.attributes?.replacement_instance_id);
    expect(second.message).toMatch(/already replaced/);
    expect(replacementsOf(old)).toHaveLength(1);
    expect(aws.callsTo('CreateFleet')).toHaveLength(1);
  });

  it('launches one replacement when copies of the event race past the tag check in two replicas (the client token)', async () => {
    const old = standalone();
    // Two processes: within one, the second copy would wait for the first instead. 100 ms on every
    // call makes both look before either launches, however busy the machine is.
    aws.latency.set(100);
    const results = await Promise.all([handler().handle(spotEvent(old), context()), handler().handle(spotEvent(old), context())]);
    expect(aws.callsTo('CreateFleet')).toHaveLength(2);
    const tokens = aws.callsTo('CreateFleet').map((c) => c.params.ClientToken);
    expect(tokens[0]).toMatch(/^hollowtrees-[0-9a-f]{40}$/);
    expect(tokens[1]).toBe(tokens[0]);
    expect(replacementsOf(old)).toHaveLength(1);
    expect(results[1]?.attributes?.replacement_instance_id).toBe(results[0]?.attributes?.replacement_instance_id);
  });

  it('launches one replacement when the racing replicas were told the old instance’s tags in different orders (EC2 keeps no order)', async () => {
    const old = standalone();
    const instance = aws.ec2.instances.get(old)!;
    // Each DescribeInstances lists the tags in the other order from the one before.
    intercept(
      'DescribeInstances',
      (params, real) => {
        const out = real(params);
        instance.tags = Object.fromEntries(Object.entries(instance.tags).reverse());
        return out;
      },
      aws.ec2,
    );
    aws.latency.set(100);
    const results = await Promise.all([handler().handle(spotEvent(old), context()), handler().handle(spotEvent(old), context())]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(replacementsOf(old)).toHaveLength(1);
    expect(results[1]?.attributes?.replacement_instance_id).toBe(results[0]?.attributes?.replacement_instance_id);
  });

  it('launches one replacement when two calls about one instance (an alert and a notice) waited for a third that failed', async () => {
    const old = standalone();
    aws.faults.unavailable(1, { action: 'CreateFleet' });
    const h = handler({ retry: { maxAttempts: 1 } });
    // Started together: the alert's call replaces, the two others wait for it.
    const [failed, ...waited] = await Promise.allSettled([
      h.handle(spotEvent(old, 'alert'), context()),
      h.handle(spotEvent(old, 'notice'), context()),
      h.handle(spotEvent(old, 'rebalance'), context()),
    ]);
    expect(failed).toMatchObject({ status: 'rejected', reason: { code: Code.Unavailable } });
    // One of the two replaces the instance now; the other waits for it in turn.
    const [replaced, again] = waited.map((r) => (r.status === 'fulfilled' ? r.value : r.reason));
    expect(replaced).toMatchObject({ status: 'ok', message: expect.stringMatching(/^launched spot /) });
    expect(again.message).toBe(`replacement already requested by this process: ${replaced.message}`);
    expect(replacementsOf(old)).toHaveLength(1);
  });

  it('does not let a call that went while it waited (deadline, cancel) make the next call miss the replacement in flight', async () => {
    const old = standalone();
    const h = handler();
    const replacing = h.handle(spotEvent(old, 'alert'), context());
    const gone = new AbortController();
    const waiting = rejection(h.handle(spotEvent(old, 'notice'), { ...context(), signal: gone.signal }));
    gone.abort(new PluginError(Code.DeadlineExceeded, 'deadline exceeded'));
    expect((await waiting).code).toBe(Code.DeadlineExceeded);
    // Core's retry of the call that went, while the alert's replacement is still on its way.
    const retried = h.handle(spotEvent(old, 'notice'), context(2));
    const [first, second] = await Promise.all([replacing, retried]);
    expect(second.message).toBe(`replacement already requested by this process: ${first.message}`);
    expect(replacementsOf(old)).toHaveLength(1);
    expect(aws.callsTo('CreateFleet')).toHaveLength(1);
  });

  it('launches one replacement when two replicas race past the tag check with different events about one instance (an alert and a notice)', async () => {
    const old = standalone();
    // Two processes, as in the test above, but each with its own event: core's replicas, one taking the
    // Prometheus alert, the other the interruption notice from SQS, run two flows at the same moment.
    aws.latency.set(100);
    const results = await Promise.all([handler().handle(spotEvent(old, 'alert'), context()), handler().handle(spotEvent(old, 'notice'), context())]);
    const tokens = aws.callsTo('CreateFleet').map((c) => c.params.ClientToken);
    expect(new Set(tokens).size).toBe(1);
    expect(replacementsOf(old)).toHaveLength(1);
    expect(results[1]?.attributes?.replacement_instance_id).toBe(results[0]?.attributes?.replacement_instance_id);
  });

  it('launches one replacement when core retries after the on-demand fallback’s answer was lost and spot capacity is back meanwhile', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large']);
    // EC2 takes the on-demand request but the answer is lost (a 5xx), and its instance appears only
    // later, as a launch still under way when the client gave up would: core's retry finds no tag yet.
    let launchLater: (() => unknown) | undefined;
    intercept(
      'CreateFleet',
      (params, real) => {
        launchLater?.();
        launchLater = undefined;
        if (params.under('TargetCapacitySpecification').get('DefaultTargetCapacityType') !== 'on-demand' || replacementsOf(old).length > 0) return real(params);
        launchLater = () => real(params);
        throw lostAnswer();
      },
      aws.ec2,
    );
    const h = handler({ instanceTypes: ['m5.large'], retry: { maxAttempts: 1 } });
    expect((await rejection(h.handle(spotEvent(old), context()))).code).toBe(Code.Unavailable);
    aws.ec2.capacityRestored(['m5.large']);

    const retried = await h.handle(spotEvent(old), context(2));
    expect(replacementsOf(old)).toHaveLength(1);
    expect(retried.attributes).toMatchObject({ replacement_instance_id: replacementsOf(old)[0]!.instanceId, replacement_capacity_type: 'on-demand' });
  });

  it('derives different client tokens for different instances', async () => {
    const h = handler();
    await h.handle(spotEvent(standalone(), 'a'), context());
    await h.handle(spotEvent(standalone(), 'b'), context());
    const [a, b] = aws.callsTo('CreateFleet').map((c) => c.params.ClientToken);
    expect(a).not.toBe(b);
  });
});

describe('retries and lost answers (core retries a call, the SDK re-sends a request)', () => {
  it('a retry after a partial CompleteLifecycleAction (hook 1 done, hook 2 UNAVAILABLE) completes hook 2 instead of failing on hook 1', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }, { name: 'backup-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    let outage = true;
    intercept('CompleteLifecycleAction', (params, real) => {
      if (outage && params.get('LifecycleHookName') === 'backup-first') throw new AwsApiError('ServiceUnavailable', 'Service is unavailable, please try again later.', 503);
      return real(params);
    });
    const first = await rejection(handler().handle(spotEvent(old!), context(1)));
    expect(first.code).toBe(Code.Unavailable);
    outage = false;
    const retried = await handler().handle(spotEvent(old!), context(2));
    expect(retried).toMatchObject({
      status: 'ok',
      message: `${old} is terminating in workers: completed backup-first with CONTINUE, drain-first completed before, so the group replaces it now`,
      attributes: { lifecycle_hooks_completed: 'drain-first,backup-first', replacement_requested: 'true' },
    });
    expect(aws.autoScaling.lifecycleActions.map((a) => [a.hookName, a.result])).toEqual([
      ['drain-first', 'CONTINUE'],
      ['backup-first', 'CONTINUE'],
    ]);
    expect(logs).toContainEqual(expect.objectContaining({ message: 'the lifecycle action was already completed', fields: expect.objectContaining({ instance_id: old, hook: 'drain-first' }) }));
  });

  it('a CompleteLifecycleAction whose answer is lost (5xx after it took effect) is not failed by the SDK retry finding the action completed', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    let lose = 1;
    intercept('CompleteLifecycleAction', (params, real) => {
      const out = real(params);
      if (lose-- > 0) throw lostAnswer();
      return out;
    });
    const result = await handler().handle(spotEvent(old!), context());
    expect(aws.callsTo('CompleteLifecycleAction').map((c) => c.errorCode)).toEqual(['InternalFailure', 'ValidationError']);
    expect(aws.autoScaling.lifecycleActions.map((a) => [a.hookName, a.result])).toEqual([['drain-first', 'CONTINUE']]);
    expect(result).toMatchObject({
      status: 'ok',
      message: `${old} is terminating in workers: drain-first completed before, so the group replaces it now`,
      attributes: { lifecycle_hooks_completed: 'drain-first' },
    });
  });

  it('answers ABORTED (retryable) when every lifecycle action is already completed and the member is still Terminating:Wait', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    // In Terminating:Wait with no pending action: Auto Scaling has not moved it on yet.
    group.members.get(old!)!.lifecycleState = 'Terminating:Wait';
    const err = await rejection(handler().handle(spotEvent(old!), context()));
    expect(err.code).toBe(Code.Aborted);
    expect(err.message).toBe(`${old} is still Terminating:Wait in Auto Scaling group workers, but no lifecycle action of drain-first is active: retry`);
  });

  it('answers ABORTED (retryable), not INVALID_ARGUMENT, when another replica put MinSize back between this detach’s lowering and its DetachInstances', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    // The ha overlay runs a plugin beside each of core's replicas: another one, done with its own detach
    // from the group, restores the original MinSize right after this one lowered it.
    let otherReplica = true;
    intercept('UpdateAutoScalingGroup', (params, real) => {
      const out = real(params);
      if (otherReplica && params.get('MinSize') === '1') group.minSize = 2;
      return out;
    });
    const h = handler();
    const err = await rejection(h.handle(spotEvent(old!), context()));
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['ValidationError']);
    expect(err.code).toBe(Code.Aborted);
    expect(err.message).toMatch(/below the minimum size of 2 of Auto Scaling group workers/);
    expect(err.message).toMatch(/MinSize of Auto Scaling group workers is 2 again, above the 1 this detach set: another process restored it meanwhile; retry$/);
    // Core's retry, with the group left alone this time, detaches it.
    otherReplica = false;
    expect(await h.handle(spotEvent(old!), context(2))).toMatchObject({ status: 'ok', attributes: { replacement_requested: 'true' } });
    expect(group.members.has(old!)).toBe(false);
    expect(group.minSize).toBe(2);
  });

  it('keeps INVALID_ARGUMENT for a refused detach when MinSize is still what this detach lowered it to (its own restore comes after)', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    aws.faults.fail(1, { code: 'ValidationError', message: 'The instance is protected from detaching.', status: 400 }, { action: 'DetachInstances' });
    const err = await rejection(handler({ retry: { maxAttempts: 1 } }).handle(spotEvent(old!), context()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/ValidationError: The instance is protected from detaching\.$/);
    expect(group.minSize).toBe(2);
  });

  it('a DetachInstances that took effect but whose answer was a 5xx is not reported INVALID_ARGUMENT when the SDK retry finds the instance gone', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 1 });
    const [old] = group.members.keys();
    let lose = 1;
    intercept('DetachInstances', (params, real) => {
      const out = real(params);
      if (lose-- > 0) throw lostAnswer();
      return out;
    });
    const result = await handler().handle(spotEvent(old!), context());
    expect(group.members.has(old!)).toBe(false);
    expect(group.desiredCapacity).toBe(3);
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['InternalFailure', 'ValidationError']);
    expect(result).toMatchObject({ status: 'ok', attributes: { auto_scaling_group: 'workers', replacement_requested: 'true' } });
    expect(result.message).toMatch(new RegExp(`^detached ${old} from workers keeping its desired capacity`));
  });

  it('answers every member of a DetachInstances of several whose answer was lost detached, after the re-send and the one-by-one tries are refused', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b] = group.members.keys();
    let lose = 1;
    intercept('DetachInstances', (params, real) => {
      const out = real(params);
      if (lose-- > 0) throw lostAnswer();
      return out;
    });
    const h = handler();
    const results = await Promise.all([h.handle(spotEvent(a!), context()), h.handle(spotEvent(b!), context())]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
    const sizes = aws.callsTo('DetachInstances').map((c) => [Object.keys(c.params).filter((k) => k.startsWith('InstanceIds.member.')).length, c.errorCode]);
    expect(sizes).toEqual([
      [2, 'InternalFailure'],
      [2, 'ValidationError'],
      [1, 'ValidationError'],
      [1, 'ValidationError'],
    ]);
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(2);
    expect([group.members.has(a!), group.members.has(b!), group.desiredCapacity]).toEqual([false, false, 3]);
  });

  /** A member of a group with one termination hook that Auto Scaling starts terminating just after the first DescribeAutoScalingGroups answered. */
  const memberReclaimedAfterDescribe = (): string => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 1, lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    let once = true;
    intercept('DescribeAutoScalingGroups', (params, real) => {
      const out = real(params);
      if (once) {
        once = false;
        aws.autoScaling.beginTermination(old!);
      }
      return out;
    });
    return old!;
  };

  it('completes the lifecycle actions of a member that enters Terminating:Wait between DescribeAutoScalingGroups and DetachInstances (a spot reclaim racing the detach)', async () => {
    const old = memberReclaimedAfterDescribe();
    const result = await handler().handle(spotEvent(old), context());
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['ValidationError']);
    expect(result).toMatchObject({ status: 'ok', attributes: { auto_scaling_group: 'workers', lifecycle_hooks_completed: 'drain-first' } });
    expect(aws.autoScaling.lifecycleActions.map((a) => [a.hookName, a.result])).toEqual([['drain-first', 'CONTINUE']]);
  });

  it('leaves the lifecycle actions of a member that raced into Terminating:Wait pending until the drain, with completeLifecycleHooks: after-drain', async () => {
    const old = memberReclaimedAfterDescribe();
    const result = await handler({ completeLifecycleHooks: 'after-drain' }).handle(spotEvent(old), context());
    expect(result).toMatchObject({ status: 'skipped', attributes: { auto_scaling_group: 'workers' } });
    expect(result.message).toMatch(/lifecycle actions are left pending until the node is drained/);
    expect(aws.autoScaling.lifecycleActions.map((a) => a.result)).toEqual([undefined]);
  });

  it('answers a member whose detach was refused because it moved to another state meanwhile as a batch answers that state; the other member of the call is detached', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [moved, stays] = group.members.keys();
    let once = true;
    intercept('DescribeAutoScalingGroups', (params, real) => {
      const out = real(params);
      if (once) {
        once = false;
        group.members.get(moved!)!.lifecycleState = 'Terminating';
      }
      return out;
    });
    const h = handler();
    const [a, b] = await Promise.all([h.handle(spotEvent(moved!), context()), h.handle(spotEvent(stays!), context())]);
    expect(a).toMatchObject({ status: 'skipped', message: `${moved} is Terminating in Auto Scaling group workers: nothing to detach` });
    expect(b).toMatchObject({ status: 'ok', attributes: { replacement_requested: 'true' } });
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['ValidationError', 'ValidationError', undefined]);
    expect(group.members.has(stays!)).toBe(false);
  });

  it('a re-run of the same event (crash-resume) whose first replacement has since died launches a new one, not answer the dead one', async () => {
    const old = standalone();
    const first = await handler().handle(spotEvent(old), context());
    const dead = first.attributes!.replacement_instance_id!;
    aws.ec2.instances.get(dead)!.state = 'terminated';
    const rerun = await handler().handle(spotEvent(old), context());
    const answered = rerun.attributes!.replacement_instance_id!;
    // The stand-in leaves what a fleet launched pending.
    expect({ answered: answered === dead ? 'the dead one' : 'a new one', state: aws.ec2.instances.get(answered)?.state }).toEqual({ answered: 'a new one', state: 'pending' });
    const tokens = aws.callsTo('CreateFleet').map((c) => c.params.ClientToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).not.toBe(tokens[0]);
    // A plain re-run while the new one lives launches nothing.
    const again = await handler().handle(spotEvent(old), context());
    expect(again.attributes?.replacement_instance_id).toBe(answered);
    expect(aws.callsTo('CreateFleet')).toHaveLength(2);
  });
});

describe('dry-run', () => {
  it('sends CreateFleet with DryRun and launches nothing', async () => {
    const old = standalone();
    const result = await handler({ dryRun: true }).handle(spotEvent(old), context());
    expect(result).toMatchObject({ status: 'ok', attributes: { dry_run: 'true', strategy: 'fleet' } });
    expect(aws.callsTo('CreateFleet')[0]).toMatchObject({ params: expect.objectContaining({ DryRun: 'true' }), errorCode: 'DryRunOperation' });
    expect(aws.ec2.fleets).toHaveLength(0);
    expect(replacementsOf(old)).toHaveLength(0);
    expect(logs.some((l) => l.message.startsWith('dry run'))).toBe(true);
  });

  it('checks the tag with DryRun and only logs the Auto Scaling calls', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    const result = await handler({ dryRun: true }).handle(spotEvent(old!), context());
    expect(result.attributes).toMatchObject({ dry_run: 'true', auto_scaling_group: 'workers' });
    expect(aws.callsTo('CreateTags')[0]).toMatchObject({ params: expect.objectContaining({ DryRun: 'true' }), errorCode: 'DryRunOperation' });
    expect(aws.callsTo('DetachInstances')).toHaveLength(0);
    expect(aws.callsTo('UpdateAutoScalingGroup')).toHaveLength(0);
    expect(aws.callsTo('CreateOrUpdateTags')).toHaveLength(0);
    expect(aws.callsTo('DeleteTags')).toHaveLength(0);
    expect(group.members.has(old!)).toBe(true);
    expect(group.tags.size).toBe(0);
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: expect.stringMatching(/^dry run: would detach/),
        fields: expect.objectContaining({
          instance_id: old,
          lowered_min_size: 1,
          tag_group: 'hollowtrees:original-min-size=2',
          untag_group: 'hollowtrees:original-min-size=2',
        }),
      }),
    );
  });
});

describe('AWS errors', () => {
  it('retries throttling of both services and succeeds', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    aws.faults.throttle(2, { service: 'ec2', action: 'DescribeInstances' });
    aws.faults.throttle(2, { service: 'autoscaling', action: 'DetachInstances' });
    const result = await handler().handle(spotEvent(old!), context());
    expect(result.status).toBe('ok');
    expect(aws.callsTo('DescribeInstances').map((c) => c.errorCode)).toEqual(['RequestLimitExceeded', 'RequestLimitExceeded', undefined]);
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['Throttling', 'Throttling', undefined]);
  });

  it('retries 503 answers', async () => {
    const old = standalone();
    aws.faults.unavailable(2, { action: 'CreateFleet' });
    const result = await handler().handle(spotEvent(old), context());
    expect(result.attributes?.replacement_instance_id).toBeDefined();
    expect(aws.callsTo('CreateFleet')).toHaveLength(3);
  });

  it.each([
    ['throttling', { code: 'RequestLimitExceeded', message: 'Request limit exceeded.', status: 503 }, Code.ResourceExhausted],
    ['5xx', { code: 'InternalError', message: 'An internal error has occurred', status: 500 }, Code.Unavailable],
  ])('maps %s that outlasts the retries to a retryable code', async (_name, fault, code) => {
    const old = standalone();
    aws.faults.fail(10, fault, { action: 'DescribeInstances' });
    const err = await rejection(handler({ retry: { maxAttempts: 3, baseDelayMs: 1 } }).handle(spotEvent(old), context()));
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(true);
    expect(aws.callsTo('DescribeInstances')).toHaveLength(3);
  });

  it.each([
    ['bad credentials', { code: 'AuthFailure', message: 'AWS was not able to validate the provided access credentials', status: 401 }, Code.Unauthenticated],
    ['a missing permission', { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', status: 403 }, Code.PermissionDenied],
    ['a validation error', { code: 'InvalidParameterValue', message: "Value (x) for parameter instanceType is invalid.", status: 400 }, Code.InvalidArgument],
  ])('maps %s to a permanent code with AWS’s own message, without retrying', async (_name, fault, code) => {
    const old = standalone();
    aws.faults.fail(1, fault, { action: 'CreateFleet' });
    const err = await rejection(handler().handle(spotEvent(old), context()));
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`EC2 CreateFleet failed: ${fault.code}: ${fault.message}`);
    // AWS's message names neither the instance nor the region: the answer does.
    expect(err.message).toBe(`replacing ${old} in region us-east-1: EC2 CreateFleet failed: ${fault.code}: ${fault.message}`);
    expect(aws.callsTo('CreateFleet')).toHaveLength(1);
  });

  it('maps an Auto Scaling ValidationError to INVALID_ARGUMENT with its message', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    aws.faults.fail(1, { code: 'ValidationError', message: 'Group workers is being deleted.' }, { action: 'DetachInstances' });
    const err = await rejection(handler().handle(spotEvent(old!), context()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain('Auto Scaling DetachInstances failed: ValidationError: Group workers is being deleted.');
    expect(err.message).toMatch(new RegExp(`^replacing ${old} of Auto Scaling group workers in region us-east-1: Auto Scaling DetachInstances failed: `));
    // Read again after the refusal: still in service, so the refusal was not about its state, and stands.
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(2);
  });

  it('answers with the deadline when core gives up on the call', async () => {
    const old = standalone();
    const controller = new AbortController();
    controller.abort(new PluginError(Code.DeadlineExceeded, 'deadline exceeded'));
    const err = await rejection(handler().handle(spotEvent(old), { ...context(), signal: controller.signal }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(aws.ec2.fleets).toHaveLength(0);
  });

  it('answers NOT_FOUND for an instance EC2 does not know, without failing the others looked up with it', async () => {
    const old = standalone();
    const h = handler();
    const [unknown, known] = await Promise.allSettled([h.handle(spotEvent('i-0123456789abcdef0'), context()), h.handle(spotEvent(old), context())]);
    expect(unknown).toMatchObject({ status: 'rejected', reason: { code: Code.NotFound, message: 'EC2 DescribeInstances does not know instance i-0123456789abcdef0 in region us-east-1' } });
    expect(known).toMatchObject({ status: 'fulfilled', value: { status: 'ok' } });
    // Both were asked for in one call.
    const lookups = aws.callsTo('DescribeInstances').filter((c) => c.params['Filter.1.Name'] === 'instance-id');
    expect(lookups.map((c) => [c.params['Filter.1.Value.1'], c.params['Filter.1.Value.2']].sort())).toEqual([[old, 'i-0123456789abcdef0'].sort()]);
  });
});

describe('bad input', () => {
  it.each([
    ['no labels', { id: 'e1', source: 's', specversion: '1.0', type: 't', data: {} }, /has no labels.instance_id/],
    ['no instance_id', { id: 'e2', source: 's', specversion: '1.0', type: 't', data: { labels: { node: 'n1' } } }, /has no labels.instance_id/],
    ['a malformed instance_id', { id: 'e3', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'node-1' } } }, /is not an EC2 instance id/],
  ])('answers INVALID_ARGUMENT for an event with %s', async (_name, event: CloudEvent, message) => {
    const err = await rejection(handler().handle(event, context()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(message);
    expect(aws.calls).toHaveLength(0);
  });
});

describe('the region', () => {
  it('names the region it asked when EC2 does not know the instance: the event’s labels.region, else the configured one', async () => {
    const unknown = 'i-0123456789abcdef0';
    const h = handler();
    const inLabel = await rejection(h.handle({ ...spotEvent(unknown), data: { labels: { instance_id: unknown, region: 'eu-west-1' } } }, context()));
    expect(inLabel).toMatchObject({ code: Code.NotFound, message: `EC2 DescribeInstances does not know instance ${unknown} in region eu-west-1` });
    const configured = await rejection(h.handle(spotEvent(unknown, 'no-region'), context()));
    expect(configured.message).toBe(`EC2 DescribeInstances does not know instance ${unknown} in region us-east-1`);
  });

  it('takes an empty labels.region (a label left blank by whatever built the event) for none: the configured region, as in pool mode', async () => {
    const old = standalone();
    const blank = { ...spotEvent(old), data: { labels: { instance_id: old, region: '' } } };
    expect(await handler().handle(blank, context())).toMatchObject({ status: 'ok', attributes: { strategy: 'fleet' } });
    const surge = { ...blank, id: 'surge', data: { labels: { availability_zone: 'us-east-1c', instance_type: 'm5.large', region: '' } } };
    expect(await handler().handle(surge, { ...context(), config: { mode: 'pool' } })).toMatchObject({ status: 'skipped', message: 'no spot instance is running in pool us-east-1c/m5.large' });
  });

  it.each([[''], ['eu/west-1'], ['eu-west-1 '], ['EU-WEST-1']])('refuses a configured region that cannot be one (%j) when built, naming the option, instead of failing every call', (region) => {
    expect(() => handler({ region })).toThrow(`AwsSpotReplaceOptions.region "${region}" is not an AWS region name ${REGION_EXAMPLE}`);
  });

  it.each([
    ['a trailing blank', 'eu-west-1 '],
    ['a path', '../eu-west-1'],
    ['a host name', 'evil.example.com'],
    ['300 characters', 'x'.repeat(300)],
    // One DNS label, which the SDK took, signing every call for a region AWS does not know.
    ['upper case', 'EU-WEST-1'],
    ['a zone', 'eu-west-1a'],
  ])('refuses a labels.region that cannot be a region (%s) with INVALID_ARGUMENT naming the label, for either mode', async (_name, region) => {
    const old = standalone();
    const h = handler();
    const labelled = { ...spotEvent(old), data: { labels: { instance_id: old, region } } };
    for (const config of [{}, { mode: 'pool' }] as Record<string, string>[]) {
      const err = await rejection(h.handle(labelled, { ...context(), config }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toBe(`event ${labelled.id}: labels.region "${region}" is not an AWS region name`);
    }
    expect(aws.calls).toHaveLength(0);
  });
});

describe('served over gRPC', () => {
  async function client(options: AwsSpotReplaceOptions = {}): Promise<PluginClient> {
    const server = await serve(0, handler(options), { host: '127.0.0.1' });
    const c = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => c.close());
    return c;
  }

  it('answers with replacement_instance_id, strategy and duration_ms', async () => {
    const old = standalone();
    const res = await (await client()).handle(spotEvent(old), { flow: 'spot-replace', timeoutMs: 10_000 });
    const expected: HandleResult['attributes'] = {
      replacement_instance_id: aws.ec2.fleets[0]?.instances[0]?.instanceId ?? '',
      replacement_capacity_type: 'spot',
      replacement_instance_type: 'm5.large',
      strategy: 'fleet',
    };
    expect(res.status).toBe('ok');
    expect(res.attributes).toMatchObject(expected);
    expect(Number(res.attributes.duration_ms)).toBeGreaterThanOrEqual(0);
  });

  it('answers with the group name and replacement_requested for a group member', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    const res = await (await client()).handle(spotEvent(old!), { flow: 'spot-replace' });
    expect(res.attributes).toMatchObject({ auto_scaling_group: 'workers', replacement_requested: 'true', strategy: 'asg-detach' });
  });

  it('carries the error code over the wire', async () => {
    const c = await client();
    const err = await rejection(c.handle({ id: 'e', source: 's', specversion: '1.0', type: 't', data: { labels: {} } }, { flow: 'f' }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/has no labels.instance_id/);
  });
});

describe('which strategy and what answer (issue 20: mutation survivors)', () => {
  it('replaces a group member with a fleet when configured fleet', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    const result = await handler({ strategy: 'fleet' }).handle(spotEvent(old!), context());
    expect(result.attributes).toMatchObject({ strategy: 'fleet', replacement_instance_id: aws.ec2.fleets[0]?.instances[0]?.instanceId });
    expect(aws.callsTo('DetachInstances')).toHaveLength(0);
    expect(group.members.has(old!)).toBe(true);
  });

  it('refuses an instance outside any group with FAILED_PRECONDITION when configured asg-detach, and launches nothing', async () => {
    const old = standalone();
    const err = await rejection(handler({ strategy: 'asg-detach' }).handle(spotEvent(old), context()));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toBe(`${old} is not in an Auto Scaling group: the asg-detach strategy cannot replace it`);
    expect(aws.callsTo('CreateFleet')).toHaveLength(0);
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(0);
  });

  it('leaves an instance its group has let go (only Auto Scaling’s tag left) to the group: skipped, no fleet', async () => {
    aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 1, minSize: 1 });
    const former = aws.ec2.addInstance({ state: 'shutting-down', launchTemplate: { id: 'lt-0web', version: '1' }, tags: { 'aws:autoscaling:groupName': 'workers' } }).instanceId;
    const result = await handler().handle(spotEvent(former), context());
    expect(result).toMatchObject({
      status: 'skipped',
      message: `${former} is no longer in Auto Scaling group workers (shutting-down): the group keeps its own capacity`,
      attributes: { auto_scaling_group: 'workers', strategy: 'asg-detach' },
    });
    expect(aws.ec2.fleets).toHaveLength(0);
    expect(aws.callsTo('DetachInstances')).toHaveLength(0);
  });

  it('asks Auto Scaling which group an instance without its tag belongs to', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    // Attached by hand: Auto Scaling's tag is not on it.
    delete aws.ec2.instances.get(old!)!.tags['aws:autoscaling:groupName'];
    const result = await handler().handle(spotEvent(old!), context());
    expect(result.attributes).toMatchObject({ auto_scaling_group: 'workers', strategy: 'asg-detach', replacement_requested: 'true' });
    expect(aws.callsTo('DescribeAutoScalingInstances').map((c) => c.params['InstanceIds.member.1'])).toEqual([old]);
    expect(group.members.has(old!)).toBe(false);
  });

  it('detaches a member in Standby, and skips one in another state with the state in its message', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [standby, pending] = group.members.keys();
    group.members.get(standby!)!.lifecycleState = 'Standby';
    group.members.get(pending!)!.lifecycleState = 'Pending';
    const h = handler();
    expect(await h.handle(spotEvent(standby!), context())).toMatchObject({ status: 'ok', attributes: { replacement_requested: 'true' } });
    expect(group.members.has(standby!)).toBe(false);
    const skipped = await h.handle(spotEvent(pending!), context());
    expect(skipped).toMatchObject({
      status: 'skipped',
      message: `${pending} is Pending in Auto Scaling group workers: nothing to detach`,
      attributes: { auto_scaling_group: 'workers', strategy: 'asg-detach' },
    });
    expect(skipped.attributes).not.toHaveProperty('replacement_requested');
    // A skip is not remembered as a requested replacement: the next call looks again.
    group.members.get(pending!)!.lifecycleState = 'InService';
    expect(await h.handle(spotEvent(pending!), context())).toMatchObject({ status: 'ok', attributes: { replacement_requested: 'true' } });
  });

  it('makes a call that waited for a skip look for itself: a skip is no requested replacement', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 0 });
    const [pending] = group.members.keys();
    group.members.get(pending!)!.lifecycleState = 'Pending';
    aws.latency.set(20);
    const h = handler();
    const results = await Promise.all([h.handle(spotEvent(pending!, 'a'), context()), h.handle(spotEvent(pending!, 'b'), context())]);
    expect(results.map((r) => [r.status, r.message])).toEqual([
      ['skipped', `${pending} is Pending in Auto Scaling group workers: nothing to detach`],
      ['skipped', `${pending} is Pending in Auto Scaling group workers: nothing to detach`],
    ]);
    expect(aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(2);
  });

  it('answers NOT_FOUND when the instance’s group does not exist', async () => {
    const orphan = aws.ec2.addInstance({ tags: { 'aws:autoscaling:groupName': 'gone' } }).instanceId;
    const err = await rejection(handler().handle(spotEvent(orphan), context()));
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toBe('Auto Scaling group gone does not exist');
  });

  it('does not remember a dry run: the next call checks again', async () => {
    const old = standalone();
    const h = handler({ dryRun: true });
    await h.handle(spotEvent(old), context());
    const again = await h.handle(spotEvent(old), context());
    expect(again.message).toMatch(/^dry run: /);
    expect(aws.callsTo('CreateFleet')).toHaveLength(2);
  });

  it('makes a second call replace the instance itself when the call it waited for failed', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    aws.faults.unavailable(1, { action: 'DetachInstances' });
    aws.latency.set(20);
    const h = handler({ retry: { maxAttempts: 1 } });
    const [first, second] = await Promise.allSettled([h.handle(spotEvent(old!, 'a'), context()), h.handle(spotEvent(old!, 'b'), context())]);
    expect(first).toMatchObject({ status: 'rejected', reason: { code: Code.Unavailable } });
    expect(second).toMatchObject({ status: 'fulfilled', value: { status: 'ok', message: expect.stringMatching(/^detached /) } });
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['ServiceUnavailable', undefined]);
  });

  it('looks nothing up for a call already cancelled when it comes', async () => {
    const cancelled = standalone();
    const other = standalone();
    const h = handler();
    const controller = new AbortController();
    controller.abort(new PluginError(Code.Canceled, 'cancelled'));
    const err = rejection(h.handle(spotEvent(cancelled), { ...context(), signal: controller.signal }));
    await h.handle(spotEvent(other), context());
    expect((await err).code).toBe(Code.Canceled);
    // The other call's look-up would have taken the cancelled one's id along in its batch.
    const lookedUp = aws.callsTo('DescribeInstances').filter((c) => c.params['Filter.1.Name'] === 'instance-id');
    expect(lookedUp.map((c) => Object.entries(c.params).filter(([k]) => k.startsWith('Filter.1.Value.')).map(([, v]) => v))).toEqual([[other]]);
  });

  it.each([
    ['an empty instance_id', '', /has no labels.instance_id/],
    ['7 hex digits', 'i-1234567', /is not an EC2 instance id/],
    ['18 hex digits', 'i-0123456789abcdef01', /is not an EC2 instance id/],
    ['text before the id', 'x-i-0123456789abcdef0', /is not an EC2 instance id/],
    ['text after the id', 'i-0123456789abcdef0/x', /is not an EC2 instance id/],
    ['upper-case hex', 'i-0123456789ABCDEF0', /is not an EC2 instance id/],
  ])('answers INVALID_ARGUMENT for %s', async (_name, instanceId, message) => {
    const err = await rejection(handler().handle(spotEvent(instanceId), context()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(message);
    expect(aws.calls).toHaveLength(0);
  });

  it.each(['i-12345678', 'i-0123456789abcdef0'])('takes %s (8 and 17 hex digits) for an instance id', async (instanceId) => {
    const err = await rejection(handler().handle(spotEvent(instanceId), context()));
    expect(err.code).toBe(Code.NotFound);
  });
});

describe('group detaches in detail (issue 20: mutation survivors)', () => {
  it('retries a refused DetachInstances of several members one member at a time', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b] = group.members.keys();
    aws.faults.fail(1, { code: 'ValidationError', message: 'The instance is not in InService or Standby.' }, { action: 'DetachInstances' });
    const h = handler();
    const results = await Promise.all([h.handle(spotEvent(a!), context()), h.handle(spotEvent(b!), context())]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
    const ids = (c: { params: Readonly<Record<string, string>> }): string[] =>
      Object.entries(c.params).filter(([k]) => k.startsWith('InstanceIds.member.')).map(([, v]) => v);
    expect(aws.callsTo('DetachInstances').map((c) => [ids(c).length, c.errorCode])).toEqual([
      [2, 'ValidationError'],
      [1, undefined],
      [1, undefined],
    ]);
    expect([group.members.has(a!), group.members.has(b!)]).toEqual([false, false]);
  });

  it('does not split a DetachInstances that failed for another reason: every member of it fails with that code', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b] = group.members.keys();
    aws.faults.unavailable(1, { action: 'DetachInstances' });
    const h = handler({ retry: { maxAttempts: 1 } });
    const results = await Promise.allSettled([h.handle(spotEvent(a!), context()), h.handle(spotEvent(b!), context())]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as PluginError).code : r.status))).toEqual([Code.Unavailable, Code.Unavailable]);
    expect(aws.callsTo('DetachInstances')).toHaveLength(1);
  });

  it('goes on with a batch while one of its callers is left, and answers the one who went at once', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [gone, staying] = group.members.keys();
    aws.faults.throttle(3, { action: 'DetachInstances' });
    const h = handler({ retry: { maxAttempts: 10, baseDelayMs: 30, maxDelayMs: 30, random: () => 1 } });
    const leaving = new AbortController();
    const first = rejection(h.handle(spotEvent(gone!), { ...context(), signal: leaving.signal }));
    const second = h.handle(spotEvent(staying!), context());
    await vi.waitFor(() => expect(aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    leaving.abort(new PluginError(Code.Canceled, 'cancelled'));
    expect((await first).code).toBe(Code.Canceled);
    expect(await second).toMatchObject({ status: 'ok', attributes: { replacement_requested: 'true' } });
    // The batch was not stopped: both left the group in the call that got through.
    expect(aws.callsTo('DetachInstances').map((c) => c.errorCode)).toEqual(['Throttling', 'Throttling', 'Throttling', undefined]);
    expect(group.members.has(staying!)).toBe(false);
  });

  it('says in the RESOURCE_EXHAUSTED answer how many were ahead and that a batch was running', async () => {
    const { queued, clock, h, first, stuck } = await stuckDetach();
    const queuedCall = rejection(h.handle(spotEvent(queued!), { ...context(), deadline: new Date(clock.now() + 1_000) }));
    await vi.waitFor(() => expect(clock.sleeping).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    clock.advance(500);
    expect((await queuedCall).message).toBe(
      `the detach of ${queued} from Auto Scaling group workers was still queued (0 ahead of it, a batch in progress) 500 ms before the call's deadline; nothing was done for it, retry`,
    );
    first.abort(new PluginError(Code.Canceled, 'cancelled'));
    await stuck;
  });
});

describe('the original MinSize tag in detail (issue 20: mutation survivors)', () => {
  it('takes a tag equal to the current MinSize for stale (logged as such), and does not write it again', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2, tags: { [ORIGINAL_MIN_SIZE]: '2' } });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize)).toEqual(['1', '2']);
    expect(aws.callsTo('CreateOrUpdateTags')).toHaveLength(0);
    expect(aws.callsTo('DeleteTags').map((c) => c.params['Tags.member.1.Value'])).toEqual(['2']);
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
    expect(logs).toContainEqual({
      level: 'info',
      message: 'the group carries a stale original MinSize tag: this detach replaces or removes it',
      fields: { auto_scaling_group: 'workers', tag: `${ORIGINAL_MIN_SIZE}=2`, current_min_size: 2 },
    });
  });

  it.each(['3x', 'x3'])('takes a tag %s that is not a whole number for stale, and restores the current MinSize', async (value) => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2, tags: { [ORIGINAL_MIN_SIZE]: value } });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    expect(aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize)).toEqual(['1', '2']);
    expect(aws.callsTo('CreateOrUpdateTags').map((c) => c.params['Tags.member.1.Value'])).toEqual(['2']);
    expect(group.minSize).toBe(2);
    expect(group.tags.size).toBe(0);
  });

  it('finds the tag among the group’s other tags, and reads a value of several digits', async () => {
    // Still lowered by an earlier detach: MinSize 11, the original 12 in the tag, after a tag of the team's.
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 12, minSize: 11, tags: { team: 'infra', [ORIGINAL_MIN_SIZE]: '12' } });
    const [old] = group.members.keys();
    await handler().handle(spotEvent(old!), context());
    expect(group.minSize).toBe(12);
    expect([...group.tags.keys()]).toEqual(['team']);
  });

  it('says nothing of a stale tag on a group without one, and answers a detach that changed no MinSize without a note', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1 });
    const [old] = group.members.keys();
    const result = await handler().handle(spotEvent(old!), context());
    expect(result.message).toBe(`detached ${old} from workers keeping its desired capacity: the group launches a replacement`);
    expect(logs.filter((l) => /MinSize/.test(l.message))).toEqual([]);
  });

  it('answers a detach that lowered and restored MinSize without a note', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    const result = await handler().handle(spotEvent(old!), context());
    expect(result.message).toBe(`detached ${old} from workers keeping its desired capacity: the group launches a replacement`);
  });

  it('names the failed call and logs the group, MinSize and tag when the restore fails', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    const h = handler({ retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 50, random: () => 1 } });
    aws.faults.throttle(1, { action: 'DetachInstances' });
    const pending = h.handle(spotEvent(old!), context());
    await vi.waitFor(() => expect(aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    aws.faults.fail(1, { code: 'AccessDenied', message: 'not allowed', status: 403 }, { action: 'UpdateAutoScalingGroup' });
    const result = await pending;
    expect(result.message).toMatch(/\(tag hollowtrees:original-min-size=2\) \(Auto Scaling UpdateAutoScalingGroup failed: AccessDenied: not allowed\)$/);
    expect(logs).toContainEqual({
      level: 'warn',
      message: 'could not restore the group MinSize after the detach: the group keeps the original in its tag',
      fields: expect.objectContaining({ auto_scaling_group: 'workers', min_size: 2, tag: `${ORIGINAL_MIN_SIZE}=2` }),
    });
  });

  it('logs the group and tag, with the failed call, when only removing the tag fails', async () => {
    const group = aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [old] = group.members.keys();
    aws.faults.fail(1, { code: 'AccessDenied', message: 'not allowed', status: 403 }, { action: 'DeleteTags' });
    await handler().handle(spotEvent(old!), context());
    const warning = logs.find((l) => l.message === 'could not remove the original MinSize tag from the group');
    expect(warning?.fields).toMatchObject({ auto_scaling_group: 'workers', tag: `${ORIGINAL_MIN_SIZE}=2` });
    expect((warning?.fields?.err as Error).message).toBe('Auto Scaling DeleteTags failed: AccessDenied: not allowed');
  });

  it.each(['DescribeLifecycleHooks', 'CompleteLifecycleAction'])('names %s when it fails for a terminating member', async (action) => {
    const group = aws.autoScaling.addGroup({ name: 'workers', lifecycleHooks: [{ name: 'drain-first', transition: TERMINATING }] });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    aws.faults.fail(1, { code: 'AccessDenied', message: 'not allowed', status: 403 }, { action });
    const err = await rejection(handler().handle(spotEvent(old!), context()));
    expect([err.code, err.message]).toEqual([Code.PermissionDenied, `replacing ${old} of Auto Scaling group workers in region us-east-1: Auto Scaling ${action} failed: AccessDenied: not allowed`]);
  });
});

describe('lifecycle hooks and fleets in detail (issue 20: mutation survivors)', () => {
  it('completes every termination hook of the group and no launch hook', async () => {
    const group = aws.autoScaling.addGroup({
      name: 'workers',
      lifecycleHooks: [
        { name: 'on-launch', transition: 'autoscaling:EC2_INSTANCE_LAUNCHING' },
        { name: 'drain-first', transition: TERMINATING },
        { name: 'backup-first', transition: TERMINATING },
      ],
    });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    const result = await handler().handle(spotEvent(old!), context());
    expect(result).toMatchObject({
      status: 'ok',
      message: `${old} is terminating in workers: completed drain-first, backup-first with CONTINUE so the group replaces it now`,
      attributes: { lifecycle_hooks_completed: 'drain-first,backup-first', replacement_requested: 'true' },
    });
    expect(aws.callsTo('CompleteLifecycleAction').map((c) => c.params.LifecycleHookName)).toEqual(['drain-first', 'backup-first']);
  });

  it('in dry-run only logs the hooks it would complete', async () => {
    const group = aws.autoScaling.addGroup({
      name: 'workers',
      lifecycleHooks: [
        { name: 'drain-first', transition: TERMINATING },
        { name: 'backup-first', transition: TERMINATING },
      ],
    });
    const [old] = group.members.keys();
    aws.autoScaling.beginTermination(old!);
    const result = await handler({ dryRun: true }).handle(spotEvent(old!), context());
    expect(result).toMatchObject({
      status: 'ok',
      message: `dry run: would complete drain-first, backup-first for ${old} with CONTINUE`,
      attributes: { dry_run: 'true', lifecycle_hooks_completed: 'drain-first,backup-first' },
    });
    expect(aws.callsTo('CompleteLifecycleAction')).toHaveLength(0);
    expect(logs).toContainEqual(expect.objectContaining({ message: 'dry run: would complete the termination lifecycle actions with CONTINUE', fields: { instance_id: old, auto_scaling_group: 'workers', hooks: ['drain-first', 'backup-first'] } }));
  });

  it('says what it launched, and asks on-demand for the lowest price', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large']);
    const result = await handler({ instanceTypes: ['m5.large'] }).handle(spotEvent(old), context());
    const newId = result.attributes?.replacement_instance_id;
    expect(result.message).toBe(`launched on-demand m5.large ${newId} to replace ${old}`);
    const onDemand = aws.callsTo('CreateFleet')[1]?.params;
    expect(onDemand).toMatchObject({ 'OnDemandOptions.AllocationStrategy': 'lowest-price', 'TagSpecification.1.ResourceType': 'instance' });
    expect(Object.keys(onDemand ?? {}).filter((k) => k.startsWith('SpotOptions'))).toEqual([]);
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'no spot for the replacement: falling back to on-demand',
        fields: { instance_id: old, errors: expect.stringMatching(/^m5\.large \(spot\): InsufficientInstanceCapacity: We currently do not have sufficient m5\.large capacity/) },
      }),
    );
  });

  it('names every type that had no capacity in the error, spot and on-demand', async () => {
    const old = standalone();
    aws.ec2.noSpotCapacity(['m5.large', 'm5a.large']);
    aws.ec2.noOnDemandCapacity(['m5.large', 'm5a.large']);
    const err = await rejection(handler({ instanceTypes: ['m5.large', 'm5a.large'] }).handle(spotEvent(old), context()));
    expect(err.message).toMatch(new RegExp(`^EC2 CreateFleet launched no replacement for ${old} in us-east-1a: m5\\.large \\(spot\\): InsufficientInstanceCapacity: .*; m5a\\.large \\(spot\\): InsufficientInstanceCapacity: .*; m5\\.large \\(on-demand\\): InsufficientInstanceCapacity: `));
  });

  it('launches a new replacement when the one tagged for it is no longer running', async () => {
    const old = standalone();
    aws.ec2.addInstance({ state: 'terminated', tags: { 'hollowtrees:replaces': old } });
    const result = await handler().handle(spotEvent(old), context());
    expect(result.message).toMatch(/^launched spot m5\.large /);
    expect(aws.ec2.fleets).toHaveLength(1);
  });

  it('logs the request a dry run checked', async () => {
    const old = standalone();
    await handler({ dryRun: true }).handle(spotEvent(old), context());
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'dry run: EC2 accepted the replacement fleet request',
        fields: { instance_id: old, request: expect.objectContaining({ Type: 'instant', TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'spot' } }) },
      }),
    );
  });
});
