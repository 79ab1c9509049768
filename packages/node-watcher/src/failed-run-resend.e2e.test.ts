import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { spawnCaptured, startImdsStandIn, tempDir, waitForOutput, type ImdsScheduledEvent } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { WatcherSettings } from './cli-args.js';
import { Cleanups, metric, morePolls, startPrefixProxy, startRecordingPlugin, startTestWatcher, testSettings, until } from './test-support/watch-harness.js';

// The built core bin, as `npx hollowtrees` runs it (`pnpm test` builds first).
const CORE_CLI = new URL('../../core/dist/cli.js', import.meta.url).pathname;
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/**
 * The real core CLI with one flow that drains through `pluginAddress`: the plugin's retries are 2
 * calls, and a run that fails them fails for good (`runRetry.attempts: 1`), freeing its group.
 */
async function startCoreCli(pluginAddress: string): Promise<string> {
  const dir = cleanups.add(await tempDir('resend'), (d) => d.remove());
  const file = join(dir.path, 'config.yaml');
  writeFileSync(
    file,
    `server:
  listen: 127.0.0.1:0
log:
  level: info
plugins:
  drain:
    type: grpc
    address: ${pluginAddress}
    timeout: 5s
    retry: { attempts: 2, initialBackoff: 10ms, maxBackoff: 20ms }
flows:
  drain-node:
    allowedEvents: [hollowtrees.node.*.*]
    cooldown: 10m
    runRetry: { attempts: 1 }
    plugins: [drain]
`,
  );
  const core = cleanups.add(spawnCaptured('hollowtrees', process.execPath, [CORE_CLI, '--config', file]), (p) => p.kill());
  const started = JSON.parse(await waitForOutput(core, /"hollowtrees started"/)) as { listen: string };
  return `http://${started.listen}`;
}

/** Core's finished runs (newest first) of one event: their outcomes. */
async function outcomes(coreUrl: string, eventId: string): Promise<string[]> {
  const runs = (await (await fetch(`${coreUrl}/api/v1/status/runs`)).json()) as Array<{ eventId: string; outcome: string }>;
  return runs.filter((r) => r.eventId === eventId).map((r) => r.outcome);
}

/** An AWS scheduled maintenance: its `EventId` is the event's id; set `State` to `completed` and IMDS no longer lists it as active. */
function maintenance(id: string): ImdsScheduledEvent {
  return { EventId: id, Code: 'system-reboot', Description: 'scheduled reboot', NotBefore: '30 Nov 2026 00:10:00 GMT', State: 'active' };
}

/** A real gRPC plugin answering each call through `answer` (given the call's number, from 1), core started on it, IMDS and a watcher. */
async function setUp(answer: (call: number) => Promise<void> | void, settings: Partial<WatcherSettings> = {}) {
  let calls = 0;
  const plugin = cleanups.add(await startRecordingPlugin(() => answer(++calls)), (p) => p.close());
  const coreUrl = await startCoreCli(plugin.address);
  // The watcher reaches core through a proxy that records the paths it asks for.
  const proxy = cleanups.add(await startPrefixProxy('/core', coreUrl), (p) => p.close());
  const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
  const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${proxy.url}/core`, cloud: 'aws', metadataUrl: imds.url, ...settings })), (w) => w.stop());
  const count = (name: string, labels: Record<string, string>): Promise<number> => metric(watcher, name, labels);
  return {
    plugin,
    coreUrl,
    proxy,
    imds,
    watcher,
    accepted: () => count('hollowtrees_node_watcher_sends_total', { outcome: 'accepted' }),
    failedRuns: (outcome: string) => count('hollowtrees_node_watcher_failed_runs_total', { outcome }),
  };
}

/** What k8s-drain answers while the API server is away: UNAVAILABLE, retryable, until the plugin's retries run out. */
const unavailable = (): never => {
  throw new PluginError(Code.Unavailable, 'kube-apiserver unavailable');
};

/** What k8s-drain answers for a drain it cannot do yet (a PodDisruptionBudget): FAILED_PRECONDITION, which fails the run at once. */
const blocked = (): never => {
  throw new PluginError(Code.FailedPrecondition, 'eviction blocked by a PodDisruptionBudget');
};

describe('a notice whose flow run failed in core', () => {
  it('is sent again while IMDS lists it, and the second run succeeds; a succeeded run is never sent again', async () => {
    // The first run's two calls (its retries) meet UNAVAILABLE; the run fails; the next run's call succeeds.
    const t = await setUp((call) => (call <= 2 ? unavailable() : undefined));
    const id = 'instance-event-0a1b2c3d4e5f60718';
    t.imds.scheduleMaintenance(maintenance(id));

    await until('the second run succeeded', async () => (await outcomes(t.coreUrl, id))[0] === 'succeeded', 15_000);
    expect(await outcomes(t.coreUrl, id)).toEqual(['succeeded', 'failed']);
    expect(t.plugin.events.map((e) => e.id)).toEqual([id, id, id]);
    expect(await t.failedRuns('resent')).toBe(1);
    expect(t.watcher.lines.find((l) => String(l.msg).startsWith('a flow run of the notice failed; sending the notice again'))).toMatchObject({ level: 'warn', event_id: id, resend: 1, max_resends: 3, failed_flows: ['drain-node'] });

    // The follow of the re-send sees the success (not the failure before it) and ends: nothing more is sent.
    await morePolls(t.watcher, 'aws', 30);
    const reads = t.proxy.paths.filter((p) => p.includes('/status/')).length;
    await morePolls(t.watcher, 'aws', 30);
    expect(t.proxy.paths.filter((p) => p.includes('/status/'))).toHaveLength(reads);
    expect(await t.accepted()).toBe(2);
    expect(await t.failedRuns('resent')).toBe(1);
    expect(t.plugin.events).toHaveLength(3);
  });

  it('is not sent again once IMDS no longer lists it', async () => {
    let fail!: () => void;
    const failing = new Promise<void>((resolve) => (fail = resolve));
    cleanups.add(failing, () => fail());
    const t = await setUp(async () => {
      await failing;
      blocked();
    });
    const id = 'instance-event-0a1b2c3d4e5f60719';
    const event = maintenance(id);
    t.imds.scheduleMaintenance(event);
    await until('the run started', () => t.plugin.events.length === 1);

    // The maintenance is over (IMDS lists it as completed) before the run fails.
    event.State = 'completed';
    await morePolls(t.watcher, 'aws');
    fail();

    await until('the failed run seen, with the notice gone', async () => (await t.failedRuns('notice_gone')) === 1);
    expect(t.watcher.lines.find((l) => l.event_id === id && String(l.msg).startsWith('a flow run of the notice failed; not sending it again: the metadata service no longer lists it'))).toMatchObject({ level: 'warn' });
    await morePolls(t.watcher, 'aws', 20);
    expect(await t.accepted()).toBe(1);
    expect(t.plugin.events).toHaveLength(1);
    expect(await outcomes(t.coreUrl, id)).toEqual(['failed']);
  });

  it('is sent again at most --max-resends times', async () => {
    const t = await setUp(blocked, { maxResends: 2 });
    const id = 'instance-event-0a1b2c3d4e5f60720';
    t.imds.scheduleMaintenance(maintenance(id));

    await until('the bound reached', async () => (await t.failedRuns('resend_limit')) === 1, 15_000);
    expect(t.watcher.lines.find((l) => String(l.msg).startsWith('a flow run of the notice failed again; not sending it again: it was re-sent --max-resends times already'))).toMatchObject({ level: 'error', event_id: id, resends: 2, max_resends: 2 });
    await morePolls(t.watcher, 'aws', 20);
    // The first send and two re-sends: three runs, each failed, none after.
    expect(await t.accepted()).toBe(3);
    expect(await t.failedRuns('resent')).toBe(2);
    expect(t.plugin.events).toHaveLength(3);
    expect(await outcomes(t.coreUrl, id)).toEqual(['failed', 'failed', 'failed']);
  });

  it('--max-resends 0: not sent again, and core\'s runs are not read', async () => {
    const t = await setUp(blocked, { maxResends: 0 });
    const id = 'instance-event-0a1b2c3d4e5f60721';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('the run failed', async () => (await outcomes(t.coreUrl, id))[0] === 'failed');
    await morePolls(t.watcher, 'aws', 20);
    expect(await t.accepted()).toBe(1);
    expect(t.plugin.events).toHaveLength(1);
    expect(await t.failedRuns('resent')).toBe(0);
    expect(t.proxy.paths.filter((p) => p.includes('/status/'))).toEqual([]);
  });
});
