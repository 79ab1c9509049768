import { pluginLogger, systemClock } from '@hollowtrees/grpcplugin';
import { Registry } from 'prom-client';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureApprover } from './azure-approval.js';
import { NoticeFollow } from './notice-follow.js';
import { RunFollower, type RunsEnded } from './run-follow.js';
import { WatcherMetrics } from './watcher-metrics.js';
import { CoreClient, type FinishedRunView } from './core-client.js';
import type { OutgoingEvent } from './delivery-queue.js';
import { capturedLogger, Cleanups, startCore, startRecordingPlugin, until } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** A real core whose run of an Azure preemption event `id` is in progress, held until `release` (or the test's end). */
async function heldRun(id: string): Promise<{ client: CoreClient; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const plugin = cleanups.add(await startRecordingPlugin(() => held), (p) => p.close());
  const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
  // Before core closes, which waits for the held run.
  cleanups.add(held, () => release());
  const event = { specversion: '1.0', id, source: 'test', type: 'hollowtrees.node.azure.preempt', data: { labels: {} } };
  const posted = await fetch(`${core.url}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(event) });
  expect(posted.status).toBe(200);
  await until('the run started', () => plugin.events.length === 1);
  return { client: cleanups.add(new CoreClient({ coreUrl: core.url }), (c) => c.close()), release };
}

describe('RunFollower', () => {
  it('the approver says it gives up when the flow runs of the event have not all succeeded by maxWaitMs', async () => {
    const { client } = await heldRun('ev-1');
    const { logger, lines } = capturedLogger();
    const approvals: string[] = [];
    const approver = new AzureApprover({
      approve: (id) => {
        approvals.push(id);
        return Promise.resolve('approved');
      },
      logger: pluginLogger(logger),
    });
    const follower = cleanups.add(
      new RunFollower({ runsOf: (id, s) => client.runsOf(id, s), groupsOf: (id, s) => client.groupsOf(id, s), intervalMs: 20, maxWaitMs: 300, clock: systemClock, logger: pluginLogger(logger) }),
      (f) => f.close(),
    );

    follower.track('ev-1', (end, signal) => approver.ended('ev-1', end, signal));
    const gaveUp = (): Record<string, unknown> | undefined => lines.find((l) => l.event_id === 'ev-1' && String(l.msg).startsWith('not approving the Azure event: its flow runs did not all succeed in time'));
    await until('the approver gave up', () => gaveUp() !== undefined);
    expect(gaveUp()).toMatchObject({ level: 'warn', waited_ms: 300 });
    expect(approvals).toEqual([]);
  });

  it('backs off between its reads of core\'s runs, jittered and at most maxIntervalMs apart, and approves within one wait of the run succeeding', async () => {
    const { client, release } = await heldRun('ev-2');
    const clock = manualClock(Date.now());
    const started = clock.now();
    const reads: number[] = [];
    let reading = false;
    const approvals: number[] = [];
    const approve: RunsEnded = async (end) => {
      if (end.kind === 'succeeded') approvals.push(clock.now() - started);
      return undefined;
    };
    const follower = cleanups.add(
      new RunFollower({
        runsOf: async (id, s) => {
          reads.push(clock.now() - started);
          reading = true;
          try {
            return await client.runsOf(id, s);
          } finally {
            reading = false;
          }
        },
        groupsOf: (id, s) => client.groupsOf(id, s),
        intervalMs: 1_000,
        maxIntervalMs: 8_000,
        random: () => 0.5,
        clock,
        logger: pluginLogger(capturedLogger().logger),
      }),
      (f) => f.close(),
    );
    // One step of the clock at a time, once the approver sleeps again after its read.
    const step = async (ms: number): Promise<void> => {
      await until('the follower sleeps', () => (clock.sleeping === 1 && !reading) || approvals.length > 0);
      if (approvals.length === 0) clock.advance(ms);
    };

    follower.track('ev-2', approve);
    while (clock.now() - started < 40_000) await step(250);
    // Before, core's runs were read every second: 41 reads in 40 s for each event tracked (1,000 VMs: 1,000 a second).
    // Each wait doubles from 1 s to at most 8 s, scaled by 0.5 + random / 2 (here 0.75), so events tracked together spread out.
    const gaps = reads.slice(1).map((at, i) => at - reads[i]!);
    expect(gaps).toEqual([750, 1_500, 3_000, 6_000, 6_000, 6_000, 6_000, 6_000].map((ms) => Math.ceil(ms / 250) * 250));
    expect(approvals).toEqual([]);

    release();
    await until('the run succeeded', async () => (await client.runsOf('ev-2', new AbortController().signal)).some((r) => r.outcome === 'succeeded'));
    const succeededAt = clock.now() - started;
    while (approvals.length === 0) await step(250);
    expect(approvals[0]! - succeededAt).toBeLessThanOrEqual(6_000);
  });

  it('a failure listed from before the success its group cools down after is older: the runs of the event succeeded (core restarted, listing its failures again and not its successes)', async () => {
    const { logger } = capturedLogger();
    // A first send (a watcher restarted) finds the group cooling down after the re-send's run succeeded; core, restarted
    // since, lists again the earlier send's failure, and not the success, which was in memory only.
    const runs = [{ flow: 'drain', eventId: 'ev-4', outcome: 'failed', error: 'boom', finishedAt: '2026-12-03T08:00:00.000Z' }];
    const groups = [{ flow: 'drain', eventId: 'ev-4', phase: 'cooling', since: '2026-12-03T08:01:00.000Z' }];
    const follower = cleanups.add(
      new RunFollower({ runsOf: () => Promise.resolve(runs), groupsOf: () => Promise.resolve(groups), intervalMs: 20, maxWaitMs: 300, clock: systemClock, logger: pluginLogger(logger) }),
      (f) => f.close(),
    );
    const ends: Parameters<RunsEnded>[0][] = [];
    follower.track('ev-4', (end) => {
      ends.push(end);
      return Promise.resolve(undefined);
    });
    await until('the runs ended', () => ends.length === 1);
    expect(ends).toEqual([{ kind: 'succeeded', flows: ['drain'] }]);
  });

  it('the notice follow says it stopped following when the runs of a notice did not end by maxWaitMs, and sends nothing again', async () => {
    const { client } = await heldRun('ev-3');
    const { logger, lines } = capturedLogger();
    const resent: string[] = [];
    const follower = cleanups.add(
      new RunFollower({ runsOf: (id, s) => client.runsOf(id, s), groupsOf: (id, s) => client.groupsOf(id, s), intervalMs: 20, maxWaitMs: 300, clock: systemClock, logger: pluginLogger(logger) }),
      (f) => f.close(),
    );
    const follow = new NoticeFollow({
      follower,
      runsOf: (id, s) => client.runsOf(id, s),
      listed: () => true,
      resend: (event) => resent.push(event.id) > 0,
      maxResends: 3,
      logger: pluginLogger(logger),
      metrics: new WatcherMetrics(new Registry()),
    });

    follow.accepted({ id: 'ev-3', type: 'hollowtrees.node.azure.preempt' });
    const stopped = (): Record<string, unknown> | undefined => lines.find((l) => l.event_id === 'ev-3' && String(l.msg).startsWith('stopped following the flow runs of the notice'));
    await until('the follow stopped', () => stopped() !== undefined);
    expect(stopped()).toMatchObject({ level: 'warn', waited_ms: 300 });
    expect(resent).toEqual([]);
  });

  it('the notice follow\'s re-send names, from its second try on, the flows core lists a success of the notice in after the failure it re-sends (another watcher\'s re-send); nothing else is read for or named', async () => {
    const { logger, lines } = capturedLogger();
    // A success of an earlier notice under the same id (a maintenance that came back) is older than the failure.
    let runs: FinishedRunView[] = [
      { flow: 'drain', eventId: 'ev-5', outcome: 'failed', error: 'blocked', finishedAt: '2026-12-04T08:00:01.000Z' },
      { flow: 'notify', eventId: 'ev-5', outcome: 'succeeded', finishedAt: '2026-12-04T08:00:00.000Z' },
      { flow: 'replace', eventId: 'ev-5', outcome: 'succeeded', finishedAt: '2026-12-03T08:00:00.000Z' },
    ];
    let reads = 0;
    let answer: 'runs' | 'error' | 'never' = 'runs';
    const runsOf = (_id: string, signal: AbortSignal): Promise<FinishedRunView[]> => {
      reads++;
      if (answer === 'runs') return Promise.resolve(runs);
      if (answer === 'error') return Promise.reject(new Error('503 no ready backend'));
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
    };
    // The follower sees the first send's runs alone: the earlier notice's success is not among them.
    const follower = cleanups.add(new RunFollower({ runsOf: () => Promise.resolve(runs.slice(0, 2)), groupsOf: () => Promise.resolve([]), intervalMs: 20, maxWaitMs: 300, clock: systemClock, logger: pluginLogger(logger) }), (f) => f.close());
    const queued: OutgoingEvent[] = [];
    const follow = new NoticeFollow({ follower, runsOf, listed: () => true, resend: (event) => queued.push(event) > 0, maxResends: 3, logger: pluginLogger(logger), metrics: new WatcherMetrics(new Registry()) });
    const event = { id: 'ev-5', type: 'hollowtrees.node.aws.scheduled-maintenance' };
    const signal = new AbortController().signal;

    expect(await follow.toSend(event, signal)).toBe(event);
    follow.accepted(event);
    await until('the notice re-sent', () => queued.length === 1);
    const resend = queued[0]!;
    expect(resend).toEqual({ ...event, hollowtreessettled: 'notify' });
    // Its first try follows the look that found the failure; the next reads, and finds nothing newer.
    expect(await follow.toSend(resend, signal)).toEqual(resend);
    expect(reads).toBe(0);
    expect(await follow.toSend(resend, signal)).toEqual(resend);
    expect(reads).toBe(1);

    // Another watcher's re-send of the notice ran the drain flow with success while this one waited.
    runs = [{ flow: 'drain', eventId: 'ev-5', outcome: 'succeeded', finishedAt: '2026-12-04T08:00:05.000Z' }, ...runs];
    expect(await follow.toSend(resend, signal)).toEqual({ ...event, hollowtreessettled: 'notify,drain' });
    expect(lines.find((l) => String(l.msg).startsWith('flows ran the notice with success while its re-send waited'))).toMatchObject({ level: 'info', event_id: 'ev-5', settled_flows: ['notify', 'drain'] });
    // The queue hands the same object at the next tries: what a read found is named again when none can be read.
    answer = 'error';
    expect(await follow.toSend(resend, signal)).toEqual({ ...event, hollowtreessettled: 'notify,drain' });
    answer = 'never';
    const started = performance.now();
    expect(await follow.toSend(resend, signal)).toEqual({ ...event, hollowtreessettled: 'notify,drain' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
    // A first send of the notice (it came back under the same id) is not the re-send: sent as it is, nothing read.
    const readsBefore = reads;
    const again = { ...event };
    expect(await follow.toSend(again, signal)).toBe(again);
    expect(reads).toBe(readsBefore);
  });
});
