import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pluginLogger, systemClock, type Clock } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { freePort, startGceMetadataStandIn, startImdsStandIn, tempDir, type MetadataStandInBase } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { parseCliArgs } from './cli-args.js';
import { CoreClient } from './core-client.js';
import { DeliveryQueue, type SendEvent } from './delivery-queue.js';
import { createMonitor } from './create-monitor.js';
import { NodeWatcher } from './node-watcher.js';
import { runOnce, runWatcher } from './run-watcher.js';
import { WatcherMetrics } from './watcher-metrics.js';
import { capturedLogger, Cleanups, metric, startCore, startCoreWithConfig, startPrefixProxy, startRecordingPlugin, startTestWatcher, testSettings, until } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function secretFile(contents: string): Promise<string> {
  const dir = cleanups.add(await tempDir('watcher-secret'), (d) => d.remove());
  const path = join(dir.path, 'secret');
  await writeFile(path, contents);
  return path;
}

/** Three notices in one poll: a spot interruption, a rebalance recommendation and a scheduled reboot. */
function threeNotices(imds: Awaited<ReturnType<typeof startImdsStandIn>>): void {
  imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
  imds.recommendRebalance('2026-11-30T00:00:00Z');
  imds.scheduleMaintenance({ NotBefore: '30 Nov 2026 01:00:00 GMT', Code: 'system-reboot', Description: 'scheduled reboot', EventId: 'instance-event-0d59937288b749b32', State: 'active' });
}

describe('delivery to core', () => {
  it("honours core's 503 queue_full and its Retry-After, and every notice still arrives once", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const plugin = cleanups.add(await startRecordingPlugin(() => held), (p) => p.close());
    // One run at a time and one waiting: the third event finds the flow's queue full.
    const core = cleanups.add(await startCore(plugin.address, { flow: '    concurrency: 1\n    queueSize: 1' }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());

    threeNotices(imds);
    await until('a 503 queue_full', () => watcher.lines.some((l) => l.reason === 'queue_full'));
    const refused = watcher.lines.find((l) => l.reason === 'queue_full')!;
    // The test backoff is at most 200 ms: a wait of a second or more is core's Retry-After.
    expect(refused).toMatchObject({ level: 'warn', status: 503 });
    expect(refused.retry_in_ms).toBeGreaterThanOrEqual(1_000);

    release();
    await until('three events at the plugin', () => plugin.events.length === 3);
    expect(new Set(plugin.events.map((e) => e.type))).toEqual(new Set(['hollowtrees.node.aws.spot-interruption', 'hollowtrees.node.aws.rebalance-recommendation', 'hollowtrees.node.aws.scheduled-maintenance']));
    expect(plugin.events.find((e) => e.type.endsWith('scheduled-maintenance'))!.id).toBe('instance-event-0d59937288b749b32');
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })).toBe(3);
  });

  it.each([
    [[40, 160], [1_040, 1_160]],
    // Backoffs grown long (core away for a while): the sum is not cut at the 60 s cap, where they would meet again.
    [[59_040, 59_160], [60_040, 60_160]],
  ])("spreads core's Retry-After by its jittered backoff (%j ms), so watchers told the same Retry-After do not all come back in the same instant", async (jitters, expected) => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const plugin = cleanups.add(await startRecordingPlugin(() => held), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address, { flow: '    concurrency: 1\n    queueSize: 1' }), (c) => c.close());
    cleanups.add(held, () => release());
    // Two watchers of a wave, whose jitter drew different waits: core tells both "Retry-After: 1".
    const refusedWaits = await Promise.all(
      jitters.map(async (jitterMs) => {
        const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
        // No stop grace: core's queue stays full until the cleanup frees it after the watchers, so
        // each would spend its whole grace (5 s) on a notice this test has no more use for.
        const settings = testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url, stopGraceMs: 0 });
        const watcher = cleanups.add(await startTestWatcher(settings, { backoff: () => jitterMs }), (w) => w.stop());
        threeNotices(imds);
        await until('a 503 queue_full', () => watcher.lines.some((l) => l.reason === 'queue_full'));
        return watcher.lines.find((l) => l.reason === 'queue_full')!.retry_in_ms;
      }),
    );
    // Each waits core's second and its own jitter on top: not both exactly 1 s (or 60 s).
    expect(refusedWaits).toEqual(expected);
  });

  it("a wall clock stepped back (NTP) while a notice waits out queue_full's Retry-After does not stretch the wait into the step", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const plugin = cleanups.add(await startRecordingPlugin(() => held), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address, { flow: '    concurrency: 1\n    queueSize: 1' }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    // Wall time as the system clock reads it, steppable; its sleeps are real timers, which a step does not move.
    let offsetMs = 0;
    const clock: Clock = { now: () => Date.now() + offsetMs, sleep: systemClock.sleep };
    const { logger, lines } = capturedLogger();
    const settings = testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url });
    cleanups.add(await runWatcher(settings, { logger, clock, registry: new Registry(), backoff: () => 20 }), (w) => w.stop());

    threeNotices(imds);
    // The third notice's flow is full: it waits core's Retry-After of 1 s; the clock steps back an hour meanwhile.
    await until('a 503 queue_full', () => lines.some((l) => l.reason === 'queue_full'));
    offsetMs -= 3_600_000;
    release();
    await until('three events at the plugin', () => plugin.events.length === 3);
  });

  it("a notice whose flow is full (503 queue_full) does not hold back a spot interruption another flow has room for", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const plugin = cleanups.add(await startRecordingPlugin((e) => (e.type.endsWith('rebalance-recommendation') ? held : undefined)), (p) => p.close());
    // The rebalance flow runs one event at a time with one waiting; the interruption flow is free.
    const yaml = `
plugins:
  rec: { type: grpc, address: "${plugin.address}", timeout: 30s }
flows:
  rebalance:
    allowedEvents: [hollowtrees.node.aws.rebalance-recommendation]
    concurrency: 1
    queueSize: 1
    plugins: [rec]
  interruption:
    allowedEvents: [hollowtrees.node.aws.spot-interruption]
    plugins: [rec]
`;
    const core = cleanups.add(await startCoreWithConfig(yaml, 'two-flows.yaml', {}), (c) => c.close());
    // Before core closes, which waits for the held run, should the test fail first.
    cleanups.add(held, () => release());
    // Other nodes' recommendations fill the rebalance flow: one running (held), one waiting.
    const others = ['r-1', 'r-2'].map((id) => ({ specversion: '1.0', id, source: 'test', type: 'hollowtrees.node.aws.rebalance-recommendation', data: { labels: {} } }));
    const posted = await fetch(`${core.url}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify(others) });
    expect(posted.status).toBe(200);
    await until('the first recommendation running', () => plugin.events.length === 1);
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());

    imds.recommendRebalance('2026-11-30T00:00:00Z');
    await until('the recommendation refused: its flow is full', () => watcher.lines.some((l) => l.reason === 'queue_full'));
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('the interruption accepted while the recommendation waits', async () => (await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })) === 1);
    expect(watcher.lines.find((l) => l.msg === 'core accepted the notice')).toMatchObject({ type: 'hollowtrees.node.aws.spot-interruption' });
    expect(await metric(watcher, 'hollowtrees_node_watcher_events_pending')).toBe(1);
    await until('the interruption at the plugin', () => plugin.events.some((e) => e.type === 'hollowtrees.node.aws.spot-interruption'));

    release();
    await until('the recommendation accepted too', async () => (await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })) === 2);
  });

  it('a notice dropped from a full delivery queue is not lost: it is offered again at the next poll, and reaches core once there is room', async () => {
    const port = await freePort();
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const { logger, lines } = capturedLogger();
    const backoff = (attempt: number): number => Math.min(200, 20 * 2 ** (attempt - 1));
    const client = cleanups.add(new CoreClient({ coreUrl: `http://127.0.0.1:${port}` }), (c) => c.close());
    const watcher = new NodeWatcher({
      monitor: createMonitor({ cloud: 'aws', metadataUrl: imds.url, pollIntervalMs: 20, backoff, clock: systemClock }),
      nodeName: 'node-a',
      send: (event, signal) => client.post(event, signal),
      clock: systemClock,
      backoff,
      logger: pluginLogger(logger),
      metrics: new WatcherMetrics(new Registry()),
      // Room for one: with core away, the second notice of the poll finds the queue full.
      maxPending: 1,
    });
    cleanups.add(watcher, (w) => w.stop(5_000));
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    imds.recommendRebalance('2026-11-30T00:00:00Z');
    watcher.start();
    await until('a notice dropped from the full queue', () => lines.some((l) => l.msg === 'delivery queue full: notice dropped'));

    cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
    await until('both notices at the plugin', () => plugin.events.length === 2);
    expect(new Set(plugin.events.map((e) => e.type))).toEqual(new Set(['hollowtrees.node.aws.spot-interruption', 'hollowtrees.node.aws.rebalance-recommendation']));
  });

  it('a notice queued just as the queue finished its last send is still sent, whatever the moment', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const client = cleanups.add(new CoreClient({ coreUrl: core.url }), (c) => c.close());
    const { logger } = capturedLogger();
    const event = (id: string): { id: string; type: string } & Record<string, unknown> => ({ specversion: '1.0', id, source: '//test', type: 'hollowtrees.node.aws.spot-interruption', data: { labels: { node: id } } });
    // The second notice is queued a few microtasks after core accepted the first: each count is another moment of the worker ending its run.
    for (let ticks = 0; ticks < 6; ticks++) {
      let queue: DeliveryQueue | undefined;
      const send: SendEvent = async (e, signal) => {
        const answer = await client.post(e, signal);
        if (e.id === `first-${ticks}`) {
          let left = ticks;
          const later = (): void => void (left-- > 0 ? queueMicrotask(later) : queue!.enqueue(event(`second-${ticks}`)));
          queueMicrotask(later);
        }
        return answer;
      };
      queue = new DeliveryQueue({ send, backoff: () => 20, clock: systemClock, logger: pluginLogger(logger), metrics: new WatcherMetrics(new Registry()) });
      cleanups.add(queue, (q) => q.close());
      queue.enqueue(event(`first-${ticks}`));
      await until(`the second notice queued ${ticks} microtasks after the first was accepted, at the plugin`, () => plugin.events.some((e) => e.id === `second-${ticks}`), 3_000);
      expect(queue.size).toBe(0);
    }
  });

  it('an event queued once the queue closed (a failed run\'s notice re-sent as the watcher stops) is refused and logged as undelivered, never left unsaid', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const client = cleanups.add(new CoreClient({ coreUrl: core.url }), (c) => c.close());
    const { logger, lines } = capturedLogger();
    const queue = new DeliveryQueue({ send: (e, signal) => client.post(e, signal), backoff: () => 20, clock: systemClock, logger: pluginLogger(logger), metrics: new WatcherMetrics(new Registry()) });
    await queue.close();
    // Before: true (the notice follow logged "sending the notice again" and counted it resent), held for good, never sent nor said undelivered.
    const late: { id: string; type: string } & Record<string, unknown> = { specversion: '1.0', id: 'late', source: '//test', type: 'hollowtrees.node.aws.maintenance', data: { labels: {} } };
    expect(queue.enqueue(late)).toBe(false);
    expect(queue.size).toBe(0);
    expect(lines.find((l) => l.msg === 'stopped before core accepted the notice')).toMatchObject({ level: 'error', event_id: 'late', type: 'hollowtrees.node.aws.maintenance' });
  });

  it('on stop, a send waiting out a long backoff is tried again at once, so the event still reaches core within the grace', async () => {
    const port = await freePort();
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    // Every failed send waits 10 minutes, as a backoff grown while core was away would: only the stop's retry can deliver.
    const watcher = await startTestWatcher(testSettings({ coreUrl: `http://127.0.0.1:${port}`, cloud: 'aws', metadataUrl: imds.url }), { backoff: () => 600_000 });
    cleanups.add(watcher, (w) => w.stop());

    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('a failed send', async () => (await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'failed' })) === 1);
    cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
    await watcher.stop();

    expect(watcher.lines.find((l) => l.msg === 'core accepted the notice')).toMatchObject({ type: 'hollowtrees.node.aws.spot-interruption', tries: 2 });
    await until('the event at the plugin', () => plugin.events.length === 1);
  });

  it("on stop, a pending event is tried for the bin's default --stop-grace (25 s, under a pod's 30 s to stop), not a fixed 5 s", async () => {
    const port = await freePort();
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    const command = parseCliArgs(['--core-url', `http://127.0.0.1:${port}`, '--cloud', 'aws', '--metadata-url', imds.url, '--listen', '127.0.0.1:0'], {});
    if (command.kind !== 'run') throw new Error(`expected a run, got ${command.kind}`);
    const clock = manualClock();
    const { logger, lines } = capturedLogger();
    const watcher = await runWatcher(command.settings, { logger, clock, registry: new Registry(), backoff: () => 100 });
    // The stop's grace and a failed send's wait: the only sleepers once polling has stopped.
    const paused = (): boolean => clock.sleeping === 2;
    await until('a failed send', () => lines.some((l) => l.msg === 'no answer from core; retrying'));
    const stopped = watcher.stop();
    await until("the stop's own try failed too", () => lines.filter((l) => l.msg === 'no answer from core; retrying').length === 2 && paused());
    // Core is back 20 s into the stop (a restart): the event still reaches it.
    clock.advance(20_000);
    cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
    await until('the event at the plugin', () => {
      if (paused()) clock.advance(100);
      return plugin.events.length === 1;
    });
    await stopped;
    expect(lines.filter((l) => l.msg === 'stopped before core accepted the notice')).toEqual([]);
  });

  it('by default waits at most 5 s between tries, however long core was away: an Azure Preempt or a Google Cloud preemption gives 30 s', async () => {
    const port = await freePort();
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    const clock = manualClock();
    const { logger, lines } = capturedLogger();
    // The bin's backoff (none given); time moves only as the test says, so each wait is read, not slept.
    cleanups.add(await runWatcher(testSettings({ coreUrl: `http://127.0.0.1:${port}`, cloud: 'aws', metadataUrl: imds.url }), { logger, clock, registry: new Registry() }), (w) => w.stop());
    const waits: number[] = [];
    const retries = (): Array<Record<string, unknown>> => lines.filter((l) => l.msg === 'no answer from core; retrying');
    // Seven failed tries in a row: the backoff, doubling from 0.5 s, would be 16 s to 30 s by then.
    for (let failed = 1; failed <= 7; failed++) {
      await until(`try ${failed} failed`, () => retries().length === failed);
      waits.push(retries()[failed - 1]!.retry_in_ms as number);
      if (failed < 7) clock.advance(waits.at(-1)! + 1);
    }
    cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
    clock.advance(waits.at(-1)! + 1);
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(Math.max(...waits)).toBeLessThanOrEqual(5_000);
  });

  it.each([
    ['404 for (an ingress with no route to core yet)', 404, {}],
    ['a redirect for (an ingress sending http to https), which it does not follow,', 308, { location: 'https://hollowtrees.example/api/v1/events' }],
    ["400 core did not write for (a proxy's page: plain HTTP sent to its HTTPS port)", 400, {}],
  ] as const)("keeps trying a notice core's address answers %s and delivers it once core is reached", async (_what, status, headers) => {
    const port = await freePort();
    // A default backend where core should be, as an ingress serves it while its route is missing or moved.
    const backend = createServer((_req, res) => res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(`default backend - ${status}`));
    await new Promise<void>((resolve) => backend.listen(port, '127.0.0.1', resolve));
    const closeBackend = (): Promise<void> =>
      new Promise((resolve) => {
        backend.closeAllConnections();
        backend.close(() => resolve());
      });
    cleanups.add(backend, () => (backend.listening ? closeBackend() : undefined));
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `http://127.0.0.1:${port}`, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());

    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until(`two ${status}s`, () => watcher.lines.filter((l) => l.status === status).length >= 2);
    if ('location' in headers) expect(watcher.lines.find((l) => l.status === status)).toMatchObject({ level: 'error', location: headers.location });
    await closeBackend();
    cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'rejected' })).toBe(0);
  });

  it('drops an event core refuses with a 4xx no re-send can change, and tries it once', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    // Fewer labels allowed than every watcher event carries: core answers 400 bad_data.
    const core = cleanups.add(await startCore(plugin.address, { server: '  limits:\n    maxLabelsPerAlert: 3' }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());

    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('the refusal', async () => (await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'rejected' })) === 1);
    const polls = await metric(watcher, 'hollowtrees_node_watcher_polls_total', { cloud: 'aws' });
    await until('five more polls', async () => (await metric(watcher, 'hollowtrees_node_watcher_polls_total', { cloud: 'aws' })) >= polls + 5);

    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'rejected' })).toBe(1);
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'retried' })).toBe(0);
    expect(await metric(watcher, 'hollowtrees_node_watcher_events_pending')).toBe(0);
    expect(watcher.lines.find((l) => l.status === 400)).toMatchObject({ level: 'error', reason: 'bad_data' });
    expect(plugin.events).toHaveLength(0);
  });

  it('--once exits 1 when core refused the notice it found: the notice did not reach core', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address, { server: '  limits:\n    maxLabelsPerAlert: 3' }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    const { logger, lines } = capturedLogger();
    const code = await runOnce(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url, once: true }), { logger, registry: new Registry(), backoff: () => 20 });
    expect(lines.find((l) => l.status === 400)).toMatchObject({ reason: 'bad_data' });
    expect(code).toBe(1);
  });

  it.each([
    {
      cloud: 'aws' as const,
      broken: '/latest/meta-data/events/maintenance/scheduled',
      start: async (): Promise<MetadataStandInBase> => {
        const imds = await startImdsStandIn();
        imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
        return imds;
      },
      type: 'hollowtrees.node.aws.spot-interruption',
    },
    {
      cloud: 'gcp' as const,
      broken: '/computeMetadata/v1/instance/maintenance-event',
      start: async (): Promise<MetadataStandInBase> => {
        const gce = await startGceMetadataStandIn();
        gce.preempt();
        return gce;
      },
      type: 'hollowtrees.node.gcp.preemption',
    },
  ])('--once on $cloud with one part of the metadata service failing still sends what the rest showed, names the part, and exits 1', async ({ cloud, broken, start, type }) => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const metadata = cleanups.add(await start(), (s) => s.close());
    metadata.faults.failPath(broken, 500);
    const { logger, lines } = capturedLogger();
    const code = await runOnce(testSettings({ coreUrl: core.url, cloud, metadataUrl: metadata.url, once: true }), { logger, registry: new Registry(), backoff: () => 20 });
    expect(code).toBe(1);
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ error: expect.stringContaining(`${broken.slice(broken.lastIndexOf('/') + 1)}: HTTP 500`) as string });
    expect(lines.find((l) => l.msg === 'core accepted the notice')).toMatchObject({ type });
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(plugin.events[0]!.type).toBe(type);
  });

  it('keeps the path of --core-url (core behind an ingress under /hollowtrees), with or without its trailing slash', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const ingress = cleanups.add(await startPrefixProxy('/hollowtrees', core.url), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    threeNotices(imds);
    for (const coreUrl of [`${ingress.url}/hollowtrees`, `${ingress.url}/hollowtrees/`]) {
      const { logger } = capturedLogger();
      const code = await runOnce(testSettings({ coreUrl, cloud: 'aws', metadataUrl: imds.url, once: true }), { logger, registry: new Registry(), backoff: () => 20 });
      expect(code).toBe(0);
    }
    expect(new Set(ingress.paths)).toEqual(new Set(['/hollowtrees/api/v1/events']));
    // Three notices, sent twice: the second run's copies are duplicates core passes by.
    await until('three events at the plugin', () => plugin.events.length === 3);
  });

  it('sends the bearer token from --token-file, read again at every send, so a fixed token is picked up', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address, { server: '  auth:\n    bearerToken: the-right-token' }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const tokenFile = await secretFile('an-old-token\n');
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url, auth: { kind: 'bearer', tokenFile } })), (w) => w.stop());

    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('a 401 retried', () => watcher.lines.some((l) => l.status === 401));
    expect(plugin.events).toHaveLength(0);
    await writeFile(tokenFile, 'the-right-token\n');
    await until('the event at the plugin', () => plugin.events.length === 1);
  });

  it('sends basic auth from --basic-auth-file', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address, { server: '  auth:\n    basic: { username: watcher, password: pa55:word }' }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const file = await secretFile('watcher:pa55:word\n');
    cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url, auth: { kind: 'basic', file } })), (w) => w.stop());
    imds.recommendRebalance('2026-11-30T00:00:00Z');
    await until('the event at the plugin', () => plugin.events.length === 1);
  });
});
