import { Code, PluginError, steadyClock, systemClock } from '@hollowtrees/grpcplugin';
import { rejectionOf } from '@hollowtrees/testkit';
import { describe, expect, it, vi } from 'vitest';
import { restoreMinSize } from './asg-detach.js';
import { GroupDetacher, type GroupDetacherSettings } from './group-detacher.js';
import { InstanceLookup } from './instance-lookup.js';
import { useAwsStandIn } from './test-support/aws.js';

// GroupDetacher against the Auto Scaling stand-in: batching, MinSize, callers that go, failures.

const fixture = useAwsStandIn();

function detacherFor(group: string, settings: Partial<GroupDetacherSettings> = {}): GroupDetacher {
  return new GroupDetacher(group, { clients: fixture.clients, logger: fixture.logger, dryRun: false, coalesceMs: 20, detachConcurrency: 4, replyMarginMs: 200, onTagged: () => {}, clock: systemClock, ...settings });
}

const lookup = () => new InstanceLookup(fixture.clients, { windowMs: 1, cacheMs: 0 });
const live = () => new AbortController().signal;
// Look every instance up before any detach: a look-up slower than coalesceMs (a busy CI machine) would otherwise split one batch in two.
// The deadline, `deadlineInMs`, counts from the end of the look-up, so a slow look-up does not spend the call's time.
const request = async (id: string, extra: { releaseHooks?: boolean; signal?: AbortSignal; deadlineInMs?: number } = {}) => {
  const instance = await lookup().lookup(id, live());
  return {
    instance,
    releaseHooks: extra.releaseHooks ?? false,
    signal: extra.signal ?? live(),
    deadline: extra.deadlineInMs === undefined ? undefined : new Date(Date.now() + extra.deadlineInMs),
  };
};
const minSizeUpdates = () => fixture.aws.callsTo('UpdateAutoScalingGroup').map((c) => c.params.MinSize);

describe('GroupDetacher', () => {
  it('a call whose signal has already aborted is refused at once, and nothing is asked of AWS', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 0 });
    const [id] = group.members.keys();
    const err = await rejectionOf(detacherFor('workers').detach({ ...(await request(id!)), signal: AbortSignal.abort() }), PluginError);
    expect(err.code).toBe(Code.Canceled);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fixture.aws.callsTo('DescribeAutoScalingGroups')).toHaveLength(0);
  });

  it('a caller who goes while queued leaves the batch: its instance is not detached, the others are', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b] = group.members.keys();
    const detacher = detacherFor('workers', { coalesceMs: 100 });
    const leaving = new AbortController();
    const [forA, forB] = await Promise.all([request(a!, { signal: leaving.signal }), request(b!)]);
    const gone = rejectionOf(detacher.detach(forA), PluginError);
    const staying = detacher.detach(forB);
    leaving.abort();
    expect((await gone).code).toBe(Code.Canceled);
    expect((await staying).status).toBe('ok');
    expect(fixture.aws.callsTo('DetachInstances').map((c) => c.params['InstanceIds.member.1'])).toEqual([b]);
    expect(group.members.has(a!)).toBe(true);
  });

  it('close() answers a detach still queued UNAVAILABLE, sends nothing for it, and refuses detaches after it', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 0 });
    const [a, b] = group.members.keys();
    const detacher = detacherFor('workers', { coalesceMs: 60_000 });
    const [forA, forB] = await Promise.all([request(a!), request(b!)]);
    const queued = rejectionOf(detacher.detach(forA), PluginError);
    await detacher.close();
    const err = await queued;
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/^the plugin is shutting down: detaches from Auto Scaling group workers stopped; retry$/);
    expect((await rejectionOf(detacher.detach(forB), PluginError)).code).toBe(Code.Unavailable);
    expect(fixture.aws.calls.filter((c) => c.service === 'autoscaling')).toEqual([]);
  });

  it('a batch whose callers have all gone stops its calls; one caller left keeps it going', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b, c] = group.members.keys();
    // The batch's DetachInstances is throttled over and over: it waits in the SDK's retries.
    fixture.aws.faults.throttle(1_000, { action: 'DetachInstances' });
    const slowClients = fixture.clientsWith({ maxAttempts: 1_000, baseDelayMs: 20, maxDelayMs: 20 });
    const detacher = detacherFor('workers', { clients: slowClients });
    const callers = [new AbortController(), new AbortController()];
    const requests = await Promise.all([a!, b!].map((id, i) => request(id, { signal: callers[i]!.signal })));
    const calls = requests.map((r) => rejectionOf(detacher.detach(r), PluginError));
    await vi.waitFor(() => expect(fixture.aws.callsTo('DetachInstances').length).toBeGreaterThan(2), { timeout: 5_000, interval: 5 });
    callers[0]!.abort();
    const after = fixture.aws.callsTo('DetachInstances').length;
    // One caller is still there: the retries go on. Two more calls, as one may have been under way at the abort;
    // waited for, not slept on, as a try can take longer than any fixed sleep on a busy machine.
    await vi.waitFor(() => expect(fixture.aws.callsTo('DetachInstances').length).toBeGreaterThan(after + 1), { timeout: 5_000, interval: 5 });
    callers[1]!.abort();
    await Promise.all(calls);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = fixture.aws.callsTo('DetachInstances').length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fixture.aws.callsTo('DetachInstances').length).toBe(stopped);
    expect(group.members.has(c!)).toBe(true);
  });

  it('lowers MinSize once for a batch that needs it, restores it after the last waiting detach, and keeps Standby members out of the count', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 4, minSize: 3 });
    const [a, b, standby] = group.members.keys();
    group.members.get(standby!)!.lifecycleState = 'Standby';
    // Each call takes longer than coalesceMs, as a real API's may.
    fixture.aws.latency.set(30);
    const detacher = detacherFor('workers');
    // 3 in service at MinSize 3: detaching a and b leaves 1, so MinSize goes to 1, then back to 3.
    const requests = await Promise.all([request(a!), request(b!)]);
    const results = await Promise.all(requests.map((r) => detacher.detach(r)));
    for (const r of results) expect(r).toMatchObject({ status: 'ok', attributes: { auto_scaling_group: 'workers', replacement_requested: 'true' } });
    expect(minSizeUpdates()).toEqual(['1', '3']);
    expect(results[0]!.message).toMatch(new RegExp(`^detached ${a} from workers keeping its desired capacity: the group launches a replacement`));
  });

  it('two calls about one instance in Terminating:Wait release its hooks when either may', async () => {
    const group = fixture.aws.autoScaling.addGroup({
      name: 'workers',
      desiredCapacity: 2,
      minSize: 0,
      lifecycleHooks: [{ name: 'drain', transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeout: 300 }],
    });
    const [id] = group.members.keys();
    fixture.aws.autoScaling.beginTermination(id!);
    fixture.aws.latency.set(30);
    const detacher = detacherFor('workers');
    const requests = await Promise.all([request(id!), request(id!, { releaseHooks: true })]);
    const [held, releasing] = await Promise.all(requests.map((r) => detacher.detach(r)));
    expect(held).toEqual(releasing);
    expect(fixture.aws.callsTo('CompleteLifecycleAction')).toHaveLength(1);
  });

  it('answers a member that is neither in service nor waiting on its hooks as skipped, naming its state', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 0 });
    const [id] = group.members.keys();
    group.members.get(id!)!.lifecycleState = 'Pending';
    const result = await detacherFor('workers').detach(await request(id!));
    expect(result).toEqual({ status: 'skipped', message: `${id} is Pending in Auto Scaling group workers: nothing to detach`, attributes: { auto_scaling_group: 'workers' } });
  });

  it('fails every caller of a batch whose group cannot be read, with the refusal', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 0 });
    const [a, b] = group.members.keys();
    fixture.aws.faults.fail(1, { code: 'AccessDenied', message: 'User is not authorized to perform: autoscaling:DescribeAutoScalingGroups', status: 403 }, { action: 'DescribeAutoScalingGroups' });
    const detacher = detacherFor('workers');
    const requests = await Promise.all([request(a!), request(b!)]);
    const errs = await Promise.all(requests.map((r) => rejectionOf(detacher.detach(r), PluginError)));
    for (const err of errs) {
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.message).toMatch(/^Auto Scaling DescribeAutoScalingGroups failed: /);
    }
  });

  it('fails the detaches when MinSize cannot be lowered, and still puts the group as it was', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 2 });
    const [a] = group.members.keys();
    fixture.aws.faults.fail(1, { code: 'AccessDenied', message: 'User is not authorized to perform: autoscaling:UpdateAutoScalingGroup', status: 403 }, { action: 'UpdateAutoScalingGroup' });
    const err = await rejectionOf(detacherFor('workers').detach(await request(a!)), PluginError);
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/^Auto Scaling UpdateAutoScalingGroup failed: /);
    expect(group.members.has(a!)).toBe(true);
    expect(fixture.aws.callsTo('DetachInstances')).toHaveLength(0);
    expect(group.minSize).toBe(2);
  });

  it('answers a call still queued behind a running batch RESOURCE_EXHAUSTED at its reply margin; a running call is left to finish', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b] = group.members.keys();
    fixture.aws.faults.throttle(1_000, { action: 'DetachInstances' });
    const slowClients = fixture.clientsWith({ maxAttempts: 1_000, baseDelayMs: 20, maxDelayMs: 20 });
    const detacher = detacherFor('workers', { clients: slowClients, replyMarginMs: 200 });
    // a's batch runs (its deadline's margin passes while it runs), b waits behind it.
    const running = detacher.detach(await request(a!, { deadlineInMs: 400 }));
    await vi.waitFor(() => expect(fixture.aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    const queued = await rejectionOf(detacher.detach(await request(b!, { deadlineInMs: 300 })), PluginError);
    expect(queued.code).toBe(Code.ResourceExhausted);
    expect(queued.message).toBe(
      `the detach of ${b} from Auto Scaling group workers was still queued (0 ahead of it, a batch in progress) 200 ms before the call's deadline; nothing was done for it, retry`,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    fixture.aws.faults.clear();
    expect((await running).status).toBe('ok');
  });

  it.each([
    ['forward', 2 * 3_600_000],
    ['back', -2 * 3_600_000],
  ])('on the steady clock, the wall clock stepped 2 h %s: a call still queued is still answered at its reply margin (its wall-clock deadline read on the steady clock), not at once nor never', async (_way, step) => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 3, minSize: 0 });
    const [a, b] = group.members.keys();
    fixture.aws.faults.throttle(1_000, { action: 'DetachInstances' });
    const slowClients = fixture.clientsWith({ maxAttempts: 1_000, baseDelayMs: 20, maxDelayMs: 20 });
    const detacher = detacherFor('workers', { clients: slowClients, replyMarginMs: 200, clock: steadyClock });
    const running = detacher.detach(await request(a!, { deadlineInMs: 2_000 }));
    await vi.waitFor(() => expect(fixture.aws.callsTo('DetachInstances').length).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    const wall = Date.now;
    vi.spyOn(Date, 'now').mockImplementation(() => wall() + step);
    try {
      // The SDK hands a served call its deadline on the wall clock, stepped as it is.
      const queuedAt = performance.now();
      const queued = await rejectionOf(detacher.detach(await request(b!, { deadlineInMs: 500 })), PluginError);
      expect(queued.code).toBe(Code.ResourceExhausted);
      expect(performance.now() - queuedAt).toBeGreaterThanOrEqual(200);
      expect(performance.now() - queuedAt).toBeLessThan(1_500);
    } finally {
      vi.restoreAllMocks();
    }
    fixture.aws.faults.clear();
    expect((await running).status).toBe('ok');
  });
});

describe('restoreMinSize', () => {
  it('sets MinSize back only when told to, and removes the tag only when told to', async () => {
    const group = fixture.aws.autoScaling.addGroup({ name: 'workers', desiredCapacity: 2, minSize: 1, tags: { 'hollowtrees:original-min-size': '2' } });
    const ctx = { clients: fixture.clients, logger: fixture.logger, dryRun: false };
    expect(await restoreMinSize(ctx, 'workers', undefined, undefined)).toBe('');
    expect(await restoreMinSize(ctx, 'workers', undefined, '2')).toBe('');
    expect(minSizeUpdates()).toEqual([]);
    expect(fixture.aws.callsTo('DeleteTags')).toHaveLength(1);
    expect(await restoreMinSize(ctx, 'workers', 2, undefined)).toBe('');
    expect(minSizeUpdates()).toEqual(['2']);
    expect(group.minSize).toBe(2);
    expect(fixture.aws.callsTo('DeleteTags')).toHaveLength(1);
  });
});
