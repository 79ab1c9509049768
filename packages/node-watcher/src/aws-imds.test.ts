import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { startImdsStandIn, type ImdsScheduledEvent, type ImdsStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsImdsMonitor } from './aws-imds.js';
import { PartialCheckError } from './monitor.js';
import { noticeId, type InstanceIdentity, type Notice } from './notice.js';
import { until } from './test-support/watch-harness.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('AwsImdsMonitor', () => {
  it('renews its session token at 80 % of the TTL, before IMDS would refuse it', async () => {
    const clock = manualClock();
    const imds = await startImdsStandIn({ now: clock.now });
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, tokenTtlSeconds: 100, pollIntervalMs: 1_000, backoff: () => 1, clock });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    expect(identity).toEqual({ instanceId: 'i-0abc123def4567890', instanceType: 'm5.large', availabilityZone: 'us-east-1a', region: 'us-east-1' });
    expect(imds.tokensIssued).toBe(1);

    clock.advance(79_000);
    await monitor.check(identity, signal);
    expect(imds.tokensIssued).toBe(1);

    clock.advance(1_000);
    await monitor.check(identity, signal);
    expect(imds.tokensIssued).toBe(2);
    // Renewed ahead of time: IMDS never had to refuse a token.
    expect(imds.calls.filter((c) => c.status === 401)).toEqual([]);
  });

  it('a token request answered 200 with a page (a broken proxy in front of IMDS) is no token: refused, and the next read asks again', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    // In front of IMDS, a proxy whose first token request meets its error page; then it passes requests on.
    let garbled = 1;
    const proxy = createServer((req, res) => {
      if (req.method === 'PUT' && garbled-- > 0) return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>\n<body>502 Bad Gateway</body>\n</html>\n');
      const headers = Object.fromEntries(Object.entries(req.headers).filter((h): h is [string, string] => h[0].startsWith('x-aws-ec2-metadata-') && typeof h[1] === 'string'));
      void fetch(`${imds.url}${req.url}`, { method: req.method ?? 'GET', headers }).then(async (answer) => res.writeHead(answer.status).end(await answer.text()));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => proxy.close(() => resolve())));
    const monitor = new AwsImdsMonitor({ baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    await expect(monitor.identity(signal)).rejects.toThrow(/latest\/api\/token: HTTP 200, and the answer is no session token/);
    // The proxy is fixed: the very next read gets a token, not hours later when the page would have been renewed.
    expect(await monitor.identity(signal)).toMatchObject({ instanceId: 'i-0abc123def4567890' });
  });

  it('says which path answered what when IMDS fails', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    imds.faults.fail(1, 500);
    await expect(monitor.check(identity, signal)).rejects.toThrow(/HTTP 500/);
    imds.faults.fail(1, 403);
    await expect(monitor.identity(signal)).rejects.toThrow(/HTTP 403/);
  });

  it('names the whole URL asked, base included, when IMDS answers a read badly: --metadata-url may point at a proxy', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    imds.faults.failPath('/latest/meta-data/placement/region', 403);
    await expect(monitor.identity(signal)).rejects.toThrow(`GET ${imds.url}/latest/meta-data/placement/region: HTTP 403`);
    imds.faults.clear();
    const identity = await monitor.identity(signal);
    imds.faults.failPath('/latest/meta-data/spot/instance-action', 500);
    await expect(monitor.check(identity, signal)).rejects.toThrow(`GET ${imds.url}/latest/meta-data/spot/instance-action: HTTP 500`);
  });

  it.each(['null', '[]', '5', '"terminate"'])('an instance-action or rebalance answer that is JSON but no object (%s) fails naming its URL, and makes no notice', async (body) => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    for (const path of ['spot/instance-action', 'events/recommendations/rebalance']) {
      imds.answerRaw(path, body);
      await expect(monitor.check(identity, signal)).rejects.toThrow(`GET ${imds.url}/latest/meta-data/${path}: expected a JSON object, got ${body}`);
      imds.answerRaw(path, '{}');
    }
  });

  it('a scheduled event that is no object (a broken IMDS or proxy) does not hide the active one beside it', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    const signal = new AbortController().signal;
    const identity = await monitor.identity(signal);
    imds.scheduleMaintenance(null as unknown as ImdsScheduledEvent);
    imds.scheduleMaintenance({ NotBefore: '30 Nov 2026 01:00:00 GMT', Code: 'system-reboot', Description: 'scheduled reboot', EventId: 'instance-event-0d59937288b749b32', State: 'active' });
    expect(await monitor.check(identity, signal)).toMatchObject([{ kind: 'scheduled-maintenance', id: 'instance-event-0d59937288b749b32' }]);
  });
});

const INSTANCE = 'i-0abc123def4567890';
const signal = new AbortController().signal;

/** A stand-in and a monitor of it (a second monitor is a restarted watcher), on a clock that moves only when told. */
async function imdsMonitor(): Promise<{ imds: ImdsStandIn; monitor: () => AwsImdsMonitor; identity: InstanceIdentity }> {
  const imds = await startImdsStandIn();
  closers.push(() => imds.close());
  const clock = manualClock();
  const monitor = (): AwsImdsMonitor => new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock });
  return { imds, monitor, identity: await monitor().identity(signal) };
}

/** The notices of one kind a check finds. */
async function found(monitor: AwsImdsMonitor, identity: InstanceIdentity, kind: string): Promise<Notice[]> {
  return (await monitor.check(identity, signal)).filter((n) => n.kind === kind);
}

describe('AwsImdsMonitor notices and their ids', () => {
  it('finds nothing where every notice path answers 404', async () => {
    const { monitor, identity } = await imdsMonitor();
    expect(await monitor().check(identity, signal)).toEqual([]);
  });

  it('a spot instance action: its id names the instance, the action and the time, the same at every read and after a restart; termination_time is its time', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    imds.interruptSpot({ action: 'stop', time: '2026-11-30T00:12:00Z' });
    const notice: Notice = {
      kind: 'spot-interruption',
      id: noticeId(INSTANCE, 'spot-interruption', 'stop', '2026-11-30T00:12:00Z'),
      terminationTime: '2026-11-30T00:12:00.000Z',
      labels: { instance_action: 'stop' },
      detail: { action: 'stop', time: '2026-11-30T00:12:00Z' },
    };
    const first = monitor();
    expect(await found(first, identity, 'spot-interruption')).toEqual([notice]);
    expect(await found(first, identity, 'spot-interruption')).toEqual([notice]);
    expect(await found(monitor(), identity, 'spot-interruption')).toEqual([notice]);

    // A later interruption (the instance was started again after a stop) is a new notice.
    imds.interruptSpot({ action: 'stop', time: '2026-11-30T03:00:00Z' });
    const [later] = await found(monitor(), identity, 'spot-interruption');
    expect(later!.id).toBe(noticeId(INSTANCE, 'spot-interruption', 'stop', '2026-11-30T03:00:00Z'));
    imds.interruptSpot({ action: 'terminate', time: '2026-11-30T03:00:00Z' });
    expect((await found(monitor(), identity, 'spot-interruption'))[0]!.id).toBe(noticeId(INSTANCE, 'spot-interruption', 'terminate', '2026-11-30T03:00:00Z'));
  });

  it.each([
    ['{"action":"terminate"}', 'terminate', ''],
    ['{"action":"terminate","time":"soon"}', 'terminate', 'soon'],
    ['{}', '', ''],
  ])('a spot instance action without a time it can read (%s) has no termination_time, and an id all the same', async (body, action, time) => {
    const { imds, monitor, identity } = await imdsMonitor();
    imds.answerRaw('spot/instance-action', body);
    expect(await found(monitor(), identity, 'spot-interruption')).toEqual([{ kind: 'spot-interruption', id: noticeId(INSTANCE, 'spot-interruption', action, time), labels: { instance_action: action }, detail: JSON.parse(body) as unknown }]);
  });

  it('a rebalance recommendation: its id names the instance and noticeTime, and a new noticeTime is a new notice', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    imds.recommendRebalance('2026-11-30T00:05:00Z');
    const notice: Notice = { kind: 'rebalance-recommendation', id: noticeId(INSTANCE, 'rebalance-recommendation', '2026-11-30T00:05:00Z'), detail: { noticeTime: '2026-11-30T00:05:00Z' } };
    expect(await found(monitor(), identity, 'rebalance-recommendation')).toEqual([notice]);
    expect(await found(monitor(), identity, 'rebalance-recommendation')).toEqual([notice]);
    imds.recommendRebalance('2026-11-30T02:00:00Z');
    expect((await found(monitor(), identity, 'rebalance-recommendation'))[0]!.id).toBe(noticeId(INSTANCE, 'rebalance-recommendation', '2026-11-30T02:00:00Z'));
    imds.answerRaw('events/recommendations/rebalance', '{}');
    expect((await found(monitor(), identity, 'rebalance-recommendation'))[0]!.id).toBe(noticeId(INSTANCE, 'rebalance-recommendation', ''));
  });

  it('a scheduled maintenance is a notice while active and has an EventId, under that id, with NotBefore as termination_time and its Code as a label', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    const event = (over: Partial<ImdsScheduledEvent>): ImdsScheduledEvent => ({ NotBefore: '30 Nov 2026 01:00:00 GMT', Code: 'system-reboot', Description: 'scheduled reboot', EventId: 'instance-event-1', State: 'active', ...over });
    imds.scheduleMaintenance(event({ EventId: 'instance-event-done', State: 'completed' }));
    imds.scheduleMaintenance(event({ EventId: 'instance-event-off', State: 'canceled' }));
    imds.scheduleMaintenance(event({ EventId: '' }));
    imds.scheduleMaintenance(event({}));
    const { Code: _code, ...noCode } = event({ EventId: 'instance-event-2', NotBefore: 'whenever' });
    imds.scheduleMaintenance(noCode as ImdsScheduledEvent);
    expect(await found(monitor(), identity, 'scheduled-maintenance')).toEqual([
      { kind: 'scheduled-maintenance', id: 'instance-event-1', terminationTime: '2026-11-30T01:00:00.000Z', labels: { maintenance_code: 'system-reboot' }, detail: event({}) },
      { kind: 'scheduled-maintenance', id: 'instance-event-2', labels: { maintenance_code: '' }, detail: noCode },
    ]);
  });

  it('the Auto Scaling target lifecycle state is a notice only when Terminated (its line end aside), under one id per instance', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    imds.setTargetLifecycleState('InService');
    expect(await found(monitor(), identity, 'autoscaling-termination')).toEqual([]);
    imds.answerRaw('autoscaling/target-lifecycle-state', 'Terminated\n');
    const notice: Notice = { kind: 'autoscaling-termination', id: noticeId(INSTANCE, 'autoscaling-termination'), detail: { targetLifecycleState: 'Terminated' } };
    expect(await found(monitor(), identity, 'autoscaling-termination')).toEqual([notice]);
    expect(await found(monitor(), identity, 'autoscaling-termination')).toEqual([notice]);
  });

  it('a path that fails does not hide what the others show: the check throws a PartialCheckError holding them', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    imds.recommendRebalance('2026-11-30T00:05:00Z');
    imds.faults.failPath('/latest/meta-data/spot/instance-action', 500);
    const err = await monitor().check(identity, signal).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PartialCheckError);
    expect((err as PartialCheckError).message).toContain('spot/instance-action: HTTP 500');
    expect((err as PartialCheckError).found.map((n) => n.kind)).toEqual(['rebalance-recommendation']);
  });

  it('a token IMDS no longer takes (401) is dropped once for the GETs that met it together: one new token, and each GET tried once more', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    const watcher = monitor();
    await watcher.check(identity, signal);
    expect(imds.tokensIssued).toBe(2);
    imds.expireTokens();
    imds.recommendRebalance('2026-11-30T00:05:00Z');
    expect((await watcher.check(identity, signal)).map((n) => n.kind)).toEqual(['rebalance-recommendation']);
    expect(imds.tokensIssued).toBe(3);
    // A path that answers 401 even to the new token fails: one more try, not a loop.
    const spotGets = (): number => imds.calls.filter((c) => c.path === '/latest/meta-data/spot/instance-action').length;
    const before = spotGets();
    imds.faults.failPath('/latest/meta-data/spot/instance-action', 401);
    await expect(watcher.check(identity, signal)).rejects.toThrow('spot/instance-action: HTTP 401');
    expect(spotGets() - before).toBe(2);
    expect(imds.tokensIssued).toBe(4);
  });

  it('a token request that fails is not kept: the next read asks again', async () => {
    const { imds, monitor, identity } = await imdsMonitor();
    const watcher = monitor();
    imds.faults.failPath('/latest/api/token', 500);
    await expect(watcher.check(identity, signal)).rejects.toThrow('latest/api/token: HTTP 500 (IMDSv2 session token refused)');
    imds.faults.clear();
    expect(await watcher.check(identity, signal)).toEqual([]);
  });

  it('watching, tells the sink each path\'s list under the path, and counts a poll per round of the spot instance action alone', async () => {
    const imds = await startImdsStandIn();
    closers.push(() => imds.close());
    const clock = manualClock();
    const monitor = new AwsImdsMonitor({ baseUrl: imds.url, pollIntervalMs: 1_000, backoff: () => 1, clock });
    const identity = await monitor.identity(signal);
    imds.recommendRebalance('2026-11-30T00:05:00Z');
    const lists = new Map<string, string[]>();
    let polls = 0;
    const stop = new AbortController();
    const watch = monitor.watch(identity, { notices: (part, n) => lists.set(part, n.map((x) => x.kind)), polled: () => polls++, metadataError: () => {}, stateFileError: () => {} }, stop.signal);
    closers.push(async () => {
      stop.abort();
      await watch;
    });
    await until('each path read once, then every loop asleep', () => lists.size === 4 && clock.sleeping === 4);
    expect(Object.fromEntries(lists)).toEqual({
      'spot/instance-action': [],
      'events/recommendations/rebalance': ['rebalance-recommendation'],
      'events/maintenance/scheduled': [],
      'autoscaling/target-lifecycle-state': [],
    });
    expect(polls).toBe(1);
    expect(clock.sleeping).toBe(4);
  });
});
