import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { freePort, spawnCaptured, startAzureMetadataStandIn, startImdsStandIn, startKubeApiServer, tempDir, waitForOutput, WALL_CLOCK_STEPPED, wallClockStepPreload, type ImdsScheduledEvent, type Spawned } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { WatcherSettings } from './cli-args.js';
import { Cleanups, metric, morePolls, OTHER_FLOW, startPrefixProxy, startRecordingPlugin, startTestWatcher, testSettings, until } from './test-support/watch-harness.js';

// The built core bin, as `npx hollowtrees` runs it (`pnpm test` builds first).
const CORE_CLI = new URL('../../core/dist/cli.js', import.meta.url).pathname;
// The built watcher bin, as its DaemonSet runs it.
const WATCHER_CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/**
 * A config with one flow that drains through `pluginAddress`: the plugin's retries are 2 calls, and a
 * run that fails them fails for good (`runRetry.attempts: 1`, unless `runRetry` says otherwise), freeing its group.
 */
function drainConfig(pluginAddress: string, runRetry = '{ attempts: 1 }'): string {
  return `plugins:
  drain:
    type: grpc
    address: ${pluginAddress}
    timeout: 5s
    retry: { attempts: 2, initialBackoff: 10ms, maxBackoff: 20ms }
flows:
  drain-node:
    allowedEvents: [hollowtrees.node.*.*]
    cooldown: 10m
    runRetry: ${runRetry}
    plugins: [drain]
`;
}

/** A promise the test resolves with `open()`; opened at cleanup too, so that no plugin call waits on it after the test. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  cleanups.add(promise, () => open());
  return { promise, open };
}

/** {@link drainConfig} plus a flow `notify` that hands every notice to the plugin at `notifyAddress` and cools down `cooldown`. */
function withNotify(notifyAddress: string, cooldown: string, before = ''): (address: string) => string {
  return (address) =>
    before +
    drainConfig(address)
      .replace('plugins:\n', `plugins:\n  notify: { type: grpc, address: "${notifyAddress}" }\n`)
      .concat(`  notify:\n    allowedEvents: [hollowtrees.node.*.*]\n    cooldown: ${cooldown}\n    plugins: [notify]\n`);
}

/** The groups core holds (running, retrying or cooling down) of flow `flow`. */
async function groupsOfFlow(coreUrl: string, flow: string): Promise<unknown[]> {
  const groups = (await (await fetch(`${coreUrl}/api/v1/status/groups`)).json()) as Array<{ flow: string }>;
  return groups.filter((g) => g.flow === flow);
}

/** The real core CLI on `config` (plugins and flows), listening on `listen` (default: a free port); resolves with its URL and process. */
async function startCoreProcess(config: string, listen = '127.0.0.1:0'): Promise<{ url: string; core: Spawned }> {
  const dir = cleanups.add(await tempDir('resend'), (d) => d.remove());
  const file = join(dir.path, 'config.yaml');
  writeFileSync(file, `server:\n  listen: ${listen}\nlog:\n  level: info\n${config}`);
  const core = cleanups.add(spawnCaptured('hollowtrees', process.execPath, [CORE_CLI, '--config', file]), (p) => p.kill());
  const started = JSON.parse(await waitForOutput(core, /"hollowtrees started"/)) as { listen: string };
  return { url: `http://${started.listen}`, core };
}

/** {@link startCoreProcess}'s URL. */
async function startCoreCli(config: string): Promise<string> {
  return (await startCoreProcess(config)).url;
}

/** Core's finished runs (newest first) of one event, of flow `flow` alone when given: their outcomes. */
async function outcomes(coreUrl: string, eventId: string, flow?: string): Promise<string[]> {
  const runs = (await (await fetch(`${coreUrl}/api/v1/status/runs`)).json()) as Array<{ eventId: string; flow: string; outcome: string }>;
  return runs.filter((r) => r.eventId === eventId && (flow === undefined || r.flow === flow)).map((r) => r.outcome);
}

/** An AWS scheduled maintenance: its `EventId` is the event's id; set `State` to `completed` and IMDS no longer lists it as active. */
function maintenance(id: string): ImdsScheduledEvent {
  return { EventId: id, Code: 'system-reboot', Description: 'scheduled reboot', NotBefore: '30 Nov 2026 00:10:00 GMT', State: 'active' };
}

/** A real gRPC plugin answering each call through `answer` (given the call's number, from 1), core started on it with `config`, IMDS and a watcher. */
async function setUp(answer: (call: number) => Promise<void> | void, settings: Partial<WatcherSettings> = {}, config = drainConfig, listen?: string) {
  let calls = 0;
  const plugin = cleanups.add(await startRecordingPlugin(() => answer(++calls)), (p) => p.close());
  const { url: coreUrl, core } = await startCoreProcess(config(plugin.address), listen);
  // The watcher reaches core through a proxy that records the paths it asks for.
  const proxy = cleanups.add(await startPrefixProxy('/core', coreUrl), (p) => p.close());
  const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
  const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${proxy.url}/core`, cloud: 'aws', metadataUrl: imds.url, ...settings })), (w) => w.stop());
  const count = (name: string, labels: Record<string, string>): Promise<number> => metric(watcher, name, labels);
  return {
    plugin,
    coreUrl,
    core,
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

/** A drain plugin's answer whose first call fails (blocked) once `opened` is, and whose later calls succeed. */
const failingFirstOn = (opened: { promise: Promise<void> }) => async (call: number): Promise<void> => {
  if (call > 1) return;
  await opened.promise;
  blocked();
};

// Each test starts the core bin and waits on runs of real plugins: more than the default 20 s on a loaded machine.
describe('a notice whose flow run failed in core', { timeout: 60_000 }, () => {
  it('is sent again while IMDS lists it, and the second run succeeds; a succeeded run is never sent again', async () => {
    // The first run's two calls (its retries) meet UNAVAILABLE; the run fails; the next run's call succeeds, after a
    // drain's while: the re-send's follow looks at core's runs while that run is at work, the failed one still listed.
    const t = await setUp((call) => (call <= 2 ? unavailable() : new Promise<void>((resolve) => setTimeout(resolve, 500))));
    const id = 'instance-event-0a1b2c3d4e5f60718';
    t.imds.scheduleMaintenance(maintenance(id));

    await until('the second run succeeded', async () => (await outcomes(t.coreUrl, id))[0] === 'succeeded', 40_000);
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
    await until('the run started', () => t.plugin.events.length === 1, 30_000);

    // The maintenance is over (IMDS lists it as completed) before the run fails.
    event.State = 'completed';
    await morePolls(t.watcher, 'aws');
    fail();

    await until('the failed run seen, with the notice gone', async () => (await t.failedRuns('notice_gone')) === 1, 30_000);
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

    await until('the bound reached', async () => (await t.failedRuns('resend_limit')) === 1, 40_000);
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
    await until('the run failed', async () => (await outcomes(t.coreUrl, id))[0] === 'failed', 30_000);
    await morePolls(t.watcher, 'aws', 20);
    expect(await t.accepted()).toBe(1);
    expect(t.plugin.events).toHaveLength(1);
    expect(await t.failedRuns('resent')).toBe(0);
    expect(t.proxy.paths.filter((p) => p.includes('/status/'))).toEqual([]);
  });

  it('a run waiting for its next try (retrying) is not sent again: core tries it, and it succeeds', async () => {
    // The run's first try meets UNAVAILABLE through both its calls and waits 300 ms for its next try, which succeeds.
    const t = await setUp((call) => (call <= 2 ? unavailable() : undefined), {}, (address) => drainConfig(address, '{ attempts: 2, initialBackoff: 300ms, maxBackoff: 300ms }'));
    const id = 'instance-event-0a1b2c3d4e5f60722';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('the run succeeded on its next try', async () => (await outcomes(t.coreUrl, id))[0] === 'succeeded', 30_000);
    expect(await outcomes(t.coreUrl, id)).toEqual(['succeeded', 'retrying']);
    await morePolls(t.watcher, 'aws', 30);
    expect(await t.accepted()).toBe(1);
    expect(t.plugin.events).toHaveLength(3);
    expect(await t.failedRuns('resent')).toBe(0);
  });

  it('is sent again when a flow whose run of it succeeded no longer holds its group (no cooldown), naming that flow: it does not act twice', async () => {
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    // The drain flow as elsewhere, its first run failing, plus a notify flow without a cooldown: its group is free as soon as its run succeeded.
    const t = await setUp((call) => (call === 1 ? blocked() : undefined), {}, withNotify(notify.address, '0s'));
    const id = 'instance-event-0a1b2c3d4e5f60723';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('the drain flow ran the re-send', async () => t.plugin.events.length === 2 && (await outcomes(t.coreUrl, id))[0] === 'succeeded', 30_000);
    expect(t.watcher.lines.find((l) => l.event_id === id && String(l.msg).startsWith('a flow run of the notice failed; sending the notice again'))).toMatchObject({ level: 'warn', failed_flows: ['drain-node'] });
    await morePolls(t.watcher, 'aws', 20);
    expect(await t.accepted()).toBe(2);
    expect(await t.failedRuns('resent')).toBe(1);
    expect(await t.failedRuns('not_resent')).toBe(0);
    expect(notify.events).toHaveLength(1);
    expect(t.plugin.events).toHaveLength(2);
  });

  it('Azure --azure-approve: a failed run is not approved; the notice is sent again, and approved once that run succeeded', async () => {
    let calls = 0;
    const plugin = cleanups.add(await startRecordingPlugin(() => (++calls === 1 ? blocked() : undefined)), (p) => p.close());
    const coreUrl = await startCoreCli(drainConfig(plugin.address));
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl, cloud: 'azure', metadataUrl: azure.url, azureApprove: true })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Preempt' });

    await until('the event approved', () => azure.started.length === 1, 40_000);
    expect(azure.started).toEqual([id]);
    expect(plugin.events).toHaveLength(2);
    expect(watcher.lines.find((l) => String(l.msg).startsWith('a flow run of the Azure event failed; not approving it'))).toMatchObject({ level: 'warn' });
    expect(await metric(watcher, 'hollowtrees_node_watcher_failed_runs_total', { outcome: 'resent' })).toBe(1);
  });
});

/**
 * The drain flow's first call waits for `fail()`, then fails the run for good; later calls succeed. Beside it a notify
 * flow cools down `NOTIFY_COOLDOWN_MS` only. The re-send of the notice is refused (503) until the notify flow's cooldown is over.
 */
const NOTIFY_COOLDOWN_MS = 3_000;

/** Makes core (configured with `OTHER_FLOW`) run `count` events of another kind, and waits until each run ended. */
async function runOtherEvents(coreUrl: string, count: number): Promise<void> {
  const batch = Array.from({ length: count }, (_, i) => ({ specversion: '1.0', id: `other-${i}`, source: 'test', type: 'other.event', data: { labels: {} } }));
  const sent = await fetch(`${coreUrl}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify(batch) });
  expect(sent.status).toBe(200);
  await until(`the ${count} other runs ended`, async () => (await groupsOfFlow(coreUrl, 'other')).filter((g) => (g as { phase: string }).phase === 'cooling').length === count, 30_000);
}

describe('a notice whose drain run failed in a wave: more runs ended after it than core lists of every event (its last 100)', { timeout: 60_000 }, () => {
  it('is still seen failed by its watcher, which asks core for its notice\'s runs alone, and sent again', async () => {
    const drain = gate();
    const t = await setUp(failingFirstOn(drain), {}, (address) => drainConfig(address).replace('flows:\n', `flows:\n${OTHER_FLOW}`));
    const id = 'instance-event-0a1b2c3d4e5f60740';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('the notice accepted, its drain at work', async () => (await t.accepted()) === 1 && t.plugin.events.length === 1, 30_000);
    // The watcher reads nothing of core's runs until 150 more have ended after the drain's.
    t.proxy.refuseStatus(true);
    drain.open();
    await until('the drain run failed', async () => (await outcomes(t.coreUrl, id)).includes('failed'), 30_000);
    await runOtherEvents(t.coreUrl, 150);
    expect(await outcomes(t.coreUrl, id)).toEqual([]);

    t.proxy.refuseStatus(false);
    await until('the drain flow ran the re-send', () => t.plugin.events.length === 2, 30_000);
    expect(await t.failedRuns('resent')).toBe(1);
    // Core still finds both runs of the notice when asked for its own.
    const ofNotice = async (): Promise<string[]> => ((await (await fetch(`${t.coreUrl}/api/v1/status/runs?eventId=${id}`)).json()) as Array<{ outcome: string }>).map((r) => r.outcome);
    await until('the re-send\'s run succeeded', async () => (await ofNotice())[0] === 'succeeded', 30_000);
    expect(await ofNotice()).toEqual(['succeeded', 'failed']);
  });
});

describe('a re-send core takes only after the cooldown of a flow whose run of the notice succeeded', { timeout: 60_000 }, () => {
  /** Core (`before`: config lines ahead of the plugins, on `listen`), a drain flow failing once on `fail()`, a notify flow; the notice sent and both runs started. */
  async function failOnceBesideNotify(id: string, before = '', listen?: string) {
    const drain = gate();
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const t = await setUp(
      failingFirstOn(drain),
      {},
      withNotify(notify.address, `${NOTIFY_COOLDOWN_MS}ms`, before),
      listen,
    );
    t.imds.scheduleMaintenance(maintenance(id));
    await until('the notify run succeeded, the drain run at work', async () => t.plugin.events.length === 1 && (await outcomes(t.coreUrl, id)).includes('succeeded'), 30_000);
    const notifiedAt = Date.now();
    // Core (as an ingress in front of it says) takes no event from now on: the re-send waits in the watcher's queue.
    t.proxy.refuseEvents(true);
    drain.open();
    await until('the re-send refused', () => t.proxy.refused > 0, 30_000);
    return { ...t, notify, cooledAt: notifiedAt + NOTIFY_COOLDOWN_MS };
  }

  /** Lets the refused re-send through, and waits for the drain flow's second run. */
  async function letThrough(t: Awaited<ReturnType<typeof failOnceBesideNotify>>, id: string): Promise<void> {
    t.proxy.refuseEvents(false);
    await until('the drain flow ran the re-send', async () => t.plugin.events.length === 2 && (await outcomes(t.coreUrl, id))[0] === 'succeeded', 30_000);
    await morePolls(t.watcher, 'aws', 30);
  }

  it('core refusing events past that cooldown: only the flow that failed runs the re-send; the notify flow does not act twice', async () => {
    const id = 'instance-event-0a1b2c3d4e5f60730';
    const t = await failOnceBesideNotify(id);
    await until('the notify flow cooled down', async () => (await groupsOfFlow(t.coreUrl, 'notify')).length === 0, 30_000);
    await letThrough(t, id);
    expect(t.plugin.events).toHaveLength(2);
    expect(t.notify.events).toHaveLength(1);
    expect(await t.failedRuns('resent')).toBe(1);
    expect(await t.accepted()).toBe(2);
  });

  it('core restarted (state.file) between the drain run failing and the watcher seeing it: the notice is still sent again', async () => {
    const id = 'instance-event-0a1b2c3d4e5f60735';
    const dir = cleanups.add(await tempDir('resend-state'), (d) => d.remove());
    const config = (address: string): string => `state:\n  file: ${join(dir.path, 'state.journal')}\n${drainConfig(address)}`;
    const drain = gate();
    const t = await setUp(failingFirstOn(drain), {}, config, `127.0.0.1:${await freePort()}`);
    t.imds.scheduleMaintenance(maintenance(id));
    // The follow has read the group the drain run holds, then looked for its end.
    await until('the watcher follows the drain run at work', () => t.plugin.events.length === 1 && t.proxy.paths.some((p) => p.startsWith('/core/api/v1/status/runs')), 30_000);
    // From here the watcher cannot see core's runs: the failure and the restart happen unseen.
    t.proxy.refuseStatus(true);
    drain.open();
    await until('the drain run failed', async () => (await outcomes(t.coreUrl, id)).includes('failed'), 30_000);
    await t.core.kill();
    await startCoreProcess(config(t.plugin.address), new URL(t.coreUrl).host);
    // The journal kept the failure: the restarted core lists it.
    expect(await outcomes(t.coreUrl, id)).toEqual(['failed']);
    t.proxy.refuseStatus(false);

    await until('the drain flow ran the re-send', async () => t.plugin.events.length === 2 && (await outcomes(t.coreUrl, id))[0] === 'succeeded', 30_000);
    expect(await outcomes(t.coreUrl, id)).toEqual(['succeeded', 'failed']);
    expect(await t.failedRuns('resent')).toBe(1);
    expect(await t.accepted()).toBe(2);
  });

  it('core restarted (state.file) while the re-send waits, after that cooldown: only the flow that failed runs the re-send', async () => {
    const id = 'instance-event-0a1b2c3d4e5f60731';
    const dir = cleanups.add(await tempDir('resend-state'), (d) => d.remove());
    const t = await failOnceBesideNotify(id, `state:\n  file: ${join(dir.path, 'state.journal')}\n`, `127.0.0.1:${await freePort()}`);
    await t.core.kill();
    await until('the notify flow\'s cooldown over', () => Date.now() > t.cooledAt + 500, 30_000);
    await startCoreProcess(withNotify(t.notify.address, `${NOTIFY_COOLDOWN_MS}ms`, `state:\n  file: ${join(dir.path, 'state.journal')}\n`)(t.plugin.address), new URL(t.coreUrl).host);
    await letThrough(t, id);
    expect(t.plugin.events).toHaveLength(2);
    expect(t.notify.events).toHaveLength(1);
    // The status API after the restart lists the failure before it too: the journal kept it.
    expect(await outcomes(t.coreUrl, id)).toEqual(['succeeded', 'failed']);
    expect(await t.failedRuns('resent')).toBe(1);
  });
});

describe('a notice whose drain run failed while its notify run was still at work', { timeout: 60_000 }, () => {
  it('is sent again naming the notify flow once its run succeeded: a re-send core takes after the notify cooldown does not notify twice', async () => {
    const drain = gate();
    const notifying = gate();
    const notify = cleanups.add(await startRecordingPlugin(() => notifying.promise), (p) => p.close());
    const t = await setUp(
      failingFirstOn(drain),
      {},
      withNotify(notify.address, `${NOTIFY_COOLDOWN_MS}ms`),
    );
    const id = 'instance-event-0a1b2c3d4e5f60733';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('both runs at work', async () => (await t.accepted()) === 1 && t.plugin.events.length === 1 && notify.events.length === 1, 30_000);
    t.proxy.refuseEvents(true);
    drain.open();
    await until('the drain run failed', async () => (await outcomes(t.coreUrl, id)).includes('failed'), 30_000);
    // The watcher's follow has seen the failure (it looks every 200 ms at most) before the notify run ends.
    await morePolls(t.watcher, 'aws', 15);
    notifying.open();
    await until('the re-send refused', () => t.proxy.refused > 0, 30_000);
    await until('the notify flow cooled down', async () => (await outcomes(t.coreUrl, id)).includes('succeeded') && (await groupsOfFlow(t.coreUrl, 'notify')).length === 0, 30_000);
    t.proxy.refuseEvents(false);
    await until('the drain flow ran the re-send', async () => t.plugin.events.length === 2 && (await outcomes(t.coreUrl, id))[0] === 'succeeded', 30_000);
    await morePolls(t.watcher, 'aws', 30);
    expect(notify.events).toHaveLength(1);
    expect(t.plugin.events).toHaveLength(2);
  });
});

describe('a re-send racing a running retry of the same flow', { timeout: 60_000 }, () => {
  it('is deduplicated: no second run starts beside the retry, and the retry\'s end is the one run of the flow', async () => {
    const retry = gate();
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    // The drain run's first try meets UNAVAILABLE through both its calls; its next try (after 50 ms) waits for the gate.
    const config = (address: string): string => withNotify(notify.address, '10m')(address).replace('runRetry: { attempts: 1 }', 'runRetry: { attempts: 2, initialBackoff: 50ms, maxBackoff: 50ms }');
    const t = await setUp((call) => (call <= 2 ? unavailable() : retry.promise), {}, config);
    const id = 'instance-event-0a1b2c3d4e5f60734';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('the retry running', () => t.plugin.events.length === 3, 30_000);
    // What another watcher's re-send (or a late one) posts: the notice, naming the notify flow.
    const [event] = t.plugin.events;
    const resend = { specversion: '1.0', id, source: event!.source, type: event!.type, time: event!.time, data: event!.data, hollowtreessettled: 'notify' };
    const posted = await fetch(`${t.coreUrl}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(resend) });
    expect(posted.status).toBe(200);
    await morePolls(t.watcher, 'aws', 10);
    expect(t.plugin.events).toHaveLength(3);
    retry.open();
    await until('the retry succeeded', async () => (await outcomes(t.coreUrl, id, 'drain-node'))[0] === 'succeeded', 30_000);
    await morePolls(t.watcher, 'aws', 20);
    expect(await outcomes(t.coreUrl, id, 'drain-node')).toEqual(['succeeded', 'retrying']);
    expect(t.plugin.events).toHaveLength(3);
    expect(notify.events).toHaveLength(1);
    expect(await t.failedRuns('resent')).toBe(0);
  });
});

describe('two watchers on one node (a DaemonSet rollout: the old pod and the new) following one notice', { timeout: 60_000 }, () => {
  it('both re-send it after its drain run failed: the drain flow runs it once more, the notify flow never again', async () => {
    const drain = gate();
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const t = await setUp(
      failingFirstOn(drain),
      {},
      withNotify(notify.address, '10m'),
    );
    const other = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${t.proxy.url}/core`, cloud: 'aws', metadataUrl: t.imds.url })), (w) => w.stop());
    const id = 'instance-event-0a1b2c3d4e5f60732';
    t.imds.scheduleMaintenance(maintenance(id));
    // Both sent it while the drain run was at work: the second send joined that run.
    await until('both watchers sent the notice', async () => (await t.accepted()) === 1 && (await metric(other, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })) === 1, 30_000);
    // Core takes no re-send until both watchers saw the failure: one that looked only after the other's re-send ran the
    // drain flow with success would rightly not re-send (under load its backed-off look can come that late).
    t.proxy.refuseEvents(true);
    drain.open();

    await until('both re-sent it', async () => (await t.failedRuns('resent')) === 1 && (await metric(other, 'hollowtrees_node_watcher_failed_runs_total', { outcome: 'resent' })) === 1, 30_000);
    t.proxy.refuseEvents(false);
    await until('the drain flow ran it again', async () => (await outcomes(t.coreUrl, id))[0] === 'succeeded' && t.plugin.events.length === 2, 30_000);
    await morePolls(t.watcher, 'aws', 30);
    expect(t.plugin.events).toHaveLength(2);
    expect(notify.events).toHaveLength(1);
    expect((await outcomes(t.coreUrl, id)).filter((o) => o === 'failed')).toHaveLength(1);
  });

  it('the old pod\'s re-send, held up (core answering 503) past the drain flow\'s cooldown after the new pod\'s re-send ran that flow with success: the drain flow does not run a third time', async () => {
    const drain = gate();
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    // The drain flow cools down 2 s: the old pod's re-send reaches core after that.
    const config = (address: string): string => withNotify(notify.address, '10m')(address).replace('    cooldown: 10m\n    runRetry', '    cooldown: 2s\n    runRetry');
    const t = await setUp(failingFirstOn(drain), {}, config);
    // The new pod reaches core through its own proxy: each pod's events are refused and let through on their own.
    const newPod = cleanups.add(await startPrefixProxy('/core', t.coreUrl), (p) => p.close());
    const other = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${newPod.url}/core`, cloud: 'aws', metadataUrl: t.imds.url })), (w) => w.stop());
    const id = 'instance-event-0a1b2c3d4e5f60735';
    t.imds.scheduleMaintenance(maintenance(id));
    await until('both watchers sent the notice', async () => (await t.accepted()) === 1 && (await metric(other, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })) === 1, 30_000);
    t.proxy.refuseEvents(true);
    newPod.refuseEvents(true);
    drain.open();
    await until('both re-sent it', async () => (await t.failedRuns('resent')) === 1 && (await metric(other, 'hollowtrees_node_watcher_failed_runs_total', { outcome: 'resent' })) === 1, 30_000);

    newPod.refuseEvents(false);
    await until('the drain flow ran the new pod\'s re-send', async () => (await outcomes(t.coreUrl, id, 'drain-node'))[0] === 'succeeded' && t.plugin.events.length === 2, 30_000);
    await until('the drain flow cooled down', async () => (await groupsOfFlow(t.coreUrl, 'drain-node')).length === 0, 30_000);
    const refused = t.proxy.refused;
    t.proxy.refuseEvents(false);
    await until('core took the old pod\'s re-send', async () => (await t.accepted()) === 2, 30_000);
    await morePolls(t.watcher, 'aws', 30);
    expect(refused).toBeGreaterThan(0);
    expect(t.plugin.events).toHaveLength(2);
    expect(notify.events).toHaveLength(1);
    expect(await outcomes(t.coreUrl, id, 'drain-node')).toEqual(['succeeded', 'failed']);
    expect(t.watcher.lines.find((l) => String(l.msg).startsWith('flows ran the notice with success while its re-send waited'))).toMatchObject({ level: 'info', event_id: id, settled_flows: ['notify', 'drain-node'] });
    expect(await t.failedRuns('resent')).toBe(1);
  });
});

const STEP_MS = 2 * 60 * 60 * 1000;
/** Preloaded into the watcher: SIGUSR2 steps its wall clock 2 h forward (NTP after a VM resumed) and leaves the monotonic clock alone. */
const STEP_PRELOAD = wallClockStepPreload(STEP_MS);

describe('the watcher\'s wall clock stepped forward while it follows a notice\'s drain run', { timeout: 60_000 }, () => {
  it('the run failing after the step is still seen and the notice sent again; notices after the step carry the stepped wall time', async () => {
    let calls = 0;
    const drain = gate();
    const answer = failingFirstOn(drain);
    const plugin = cleanups.add(await startRecordingPlugin(() => answer(++calls)), (p) => p.close());
    const { url: coreUrl } = await startCoreProcess(drainConfig(plugin.address));
    const proxy = cleanups.add(await startPrefixProxy('/core', coreUrl), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const args = ['--cloud', 'aws', '--metadata-url', imds.url, '--core-url', `${proxy.url}/core`, '--poll-interval', '50ms', '--listen', '127.0.0.1:0'];
    const watcher = cleanups.add(spawnCaptured('hollowtrees-node-watcher', process.execPath, [WATCHER_CLI, ...args], { NODE_NAME: 'node-a', NODE_OPTIONS: `--import ${STEP_PRELOAD}` }), (p) => p.kill());
    await waitForOutput(watcher, /"hollowtrees-node-watcher started"/);
    const id = 'instance-event-0a1b2c3d4e5f60740';
    imds.scheduleMaintenance(maintenance(id));
    const statusReads = (): number => proxy.paths.filter((p) => p.startsWith('/core/api/v1/status/runs')).length;
    await until('the watcher follows the drain run at work', () => plugin.events.length === 1 && statusReads() > 0, 30_000);

    watcher.child.kill('SIGUSR2');
    await waitForOutput(watcher, new RegExp(WALL_CLOCK_STEPPED));
    // The follow looks at core's runs twice more on the stepped clock, the run still at work.
    const reads = statusReads();
    await until('two more looks at core\'s runs', () => statusReads() >= reads + 2, 30_000);
    drain.open();

    await until('the drain flow ran the re-send', async () => plugin.events.length === 2 && (await outcomes(coreUrl, id))[0] === 'succeeded', 30_000);
    expect(await outcomes(coreUrl, id)).toEqual(['succeeded', 'failed']);
    expect(watcher.output()).not.toContain('they did not end in time');

    // A notice first seen after the step is stamped with the wall clock people and core read, step included.
    const second = 'instance-event-0a1b2c3d4e5f60741';
    const steppedNow = Date.now() + STEP_MS;
    imds.scheduleMaintenance(maintenance(second));
    await until('the second notice acted on', () => plugin.events.some((e) => e.id === second), 30_000);
    const time = Date.parse(plugin.events.find((e) => e.id === second)!.time ?? '');
    expect(Math.abs(time - steppedNow)).toBeLessThan(30_000);
  });
});

describe('several core replicas (state.backend: kubernetes) behind one Service', { timeout: 60_000 }, () => {
  it('the watcher\'s events reach one replica and its reads the other: the drain run that failed there is still seen, with the success of a notify flow with no cooldown, and the notice sent again naming it; the success of the re-run ends the follow', async () => {
    const api = cleanups.add(await startKubeApiServer(), (a) => a.close());
    const dir = cleanups.add(await tempDir('replicas'), (d) => d.remove());
    const kubeconfig = join(dir.path, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeConfigFileText());
    const opened = gate();
    let calls = 0;
    const answer = failingFirstOn(opened);
    const plugin = cleanups.add(await startRecordingPlugin(() => answer(++calls)), (p) => p.close());
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    // Its group's Lease is deleted as its run succeeds: nothing but that run's own end says so on the other replica.
    const config = withNotify(notify.address, '0s', `state:\n  backend: kubernetes\n  kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}" }\n`)(plugin.address);
    const [a, b] = await Promise.all([startCoreProcess(config), startCoreProcess(config)]);
    const identityOf = async (url: string): Promise<string> => ((await (await fetch(`${url}/api/v1/status`)).json()) as { state: { identity: string } }).state.identity;
    const replicaA = await identityOf(a.url);
    expect(await identityOf(b.url)).not.toBe(replicaA);
    // Events go to a, every read to b.
    const proxy = cleanups.add(await startPrefixProxy('/core', a.url, b.url), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${proxy.url}/core`, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());
    const id = 'instance-event-0b1c2d3e4f5a60718';
    imds.scheduleMaintenance(maintenance(id));

    // The drain run is at work on a while the watcher reads b: b must list it as a's (else "no flow runs it", and the follow ends).
    await until('the drain run at work and the watcher reading b', () => plugin.events.length === 1 && proxy.paths.some((p) => p.startsWith('/core/api/v1/status/runs')), 30_000);
    opened.open();
    await until('the notice sent again, and its drain run done', async () => (await outcomes(a.url, id, 'drain-node'))[0] === 'succeeded', 30_000);
    expect(await metric(watcher, 'hollowtrees_node_watcher_failed_runs_total', { outcome: 'resent' })).toBe(1);
    expect(watcher.lines.find((l) => String(l.msg).startsWith('a flow run of the notice failed; sending the notice again'))).toMatchObject({ failed_flows: ['drain-node'], settled_flows: ['notify'] });
    expect(plugin.events.map((e) => e.id)).toEqual([id, id]);
    expect(notify.events.map((e) => e.id)).toEqual([id]);
    // b ran nothing: it lists a's runs, each drain end (the failure from its run-end Lease, the success from the cooldown's) and notify's success (its run-end Lease).
    // (Read from a list at most 2 s old: a's success may come a moment later.)
    const onB = async (flow: string): Promise<string[]> => {
      const runs = (await (await fetch(`${b.url}/api/v1/status/runs`)).json()) as Array<{ eventId: string; flow: string; outcome: string; replica?: string }>;
      return runs.filter((r) => r.eventId === id && r.flow === flow).map((r) => `${r.outcome} ${r.replica}`);
    };
    await until('b lists the success of the re-run', async () => (await onB('drain-node'))[0] === `succeeded ${replicaA}`, 10_000);
    expect(await onB('drain-node')).toEqual([`succeeded ${replicaA}`, `failed ${replicaA}`]);
    expect(await onB('notify')).toEqual([`succeeded ${replicaA}`]);
    // The follow of the re-send saw that success through b, and ended: no more reads, nothing sent again.
    await until('the follow of the re-send ended', async () => {
      const reads = proxy.paths.filter((p) => p.includes('/status/')).length;
      await morePolls(watcher, 'aws', 30);
      return proxy.paths.filter((p) => p.includes('/status/')).length === reads;
    }, 30_000);
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })).toBe(2);
    expect(plugin.events).toHaveLength(2);
    expect(notify.events).toHaveLength(1);
  });
});
