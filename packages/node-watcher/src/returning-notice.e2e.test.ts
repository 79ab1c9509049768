import { startAzureMetadataStandIn, startGceMetadataStandIn, startImdsStandIn, type GceMaintenanceEvent, type GceMetadataStandIn, type ImdsScheduledEvent } from '@hollowtrees/testkit';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, metric, morePolls, startCore, startRecordingPlugin, startTestWatcher, testSettings, until } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Core (one flow, no groupBy: a group is one event id, cooling down 10 min) and the plugin it calls. */
async function coreWithPlugin() {
  const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
  const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
  return { plugin, core };
}

type Watcher = Awaited<ReturnType<typeof startTestWatcher>>;

const accepted = (w: Watcher): Promise<number> => metric(w, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' });

/** Events core's flow took for ones it holds already (read from its `/metrics`). */
async function deduplicated(core: { url: string }): Promise<number> {
  const text = await (await fetch(`${core.url}/metrics`)).text();
  return Number(/^hollowtrees_events_deduplicated_total\{flow="node-notices"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

/** Kernel boot ids: the watcher's process runs in one boot of the VM, as on Linux. */
const BOOT = ['3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61', '9b0e4d7c-2a51-4f83-b6c9-1d8e3a7f5c20'] as const;

/**
 * A Google Cloud watcher of `gce` in the boot `bootId`, with both hanging GETs armed; `stop` may be
 * called before the cleanups call it (a restart).
 */
async function gcpWatcher(coreUrl: string, gce: GceMetadataStandIn, bootId: string = BOOT[0], stateFile?: string): Promise<Watcher> {
  const watcher = await startTestWatcher(testSettings({ coreUrl, cloud: 'gcp', metadataUrl: gce.url, stateFile }), { bootId });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= watcher.stop());
  cleanups.add(watcher, stop);
  await until('both hanging GETs armed', () => gce.waiting === 2);
  return { ...watcher, stop };
}

describe('a notice that leaves the metadata service and comes back', () => {
  it('AWS: a scheduled maintenance listed again under its EventId is sent again by the running watcher (core deduplicates it while its group cools down); a failed read in between is no empty list', async () => {
    const { plugin, core } = await coreWithPlugin();
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());
    const event: ImdsScheduledEvent = { EventId: 'instance-event-0d59937288b749b32', Code: 'system-reboot', Description: 'scheduled reboot', NotBefore: '30 Nov 2026 00:10:00 GMT', State: 'active' };
    imds.scheduleMaintenance(event);
    await until('the event at the plugin', () => plugin.events.length === 1);
    await until('core accepted it', async () => (await accepted(watcher)) === 1);

    // The path fails for a while: that says nothing about the notice, which is not sent again.
    imds.faults.failPath('/latest/meta-data/events/maintenance/scheduled', 500);
    await until('two failed reads', async () => (await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'aws' })) >= 2);
    imds.faults.clear();
    await morePolls(watcher, 'aws');
    expect(await accepted(watcher)).toBe(1);

    // No longer active (IMDS lists it as completed), then active again: the same notice, sent again.
    event.State = 'completed';
    await morePolls(watcher, 'aws');
    event.State = 'active';
    await until('the notice sent again', async () => (await accepted(watcher)) === 2);
    await morePolls(watcher, 'aws');

    expect(await accepted(watcher)).toBe(2);
    // Same id, group cooling down: core deduplicated the second send, the plugin ran once.
    expect(plugin.events.map((e) => e.id)).toEqual(['instance-event-0d59937288b749b32']);
  });

  it('AWS: an event a read lists twice (a broken IMDS or proxy) is one notice, seen and counted once (dry run: logged once)', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ cloud: 'aws', metadataUrl: imds.url, dryRun: true })), (w) => w.stop());
    const event: ImdsScheduledEvent = { EventId: 'instance-event-0d59937288b749b33', Code: 'system-reboot', Description: 'scheduled reboot', NotBefore: '30 Nov 2026 00:10:00 GMT', State: 'active' };
    imds.scheduleMaintenance(event);
    imds.scheduleMaintenance(event);
    await until('the notice seen', async () => (await metric(watcher, 'hollowtrees_node_watcher_notices_total', { type: 'hollowtrees.node.aws.scheduled-maintenance' })) >= 1);
    await morePolls(watcher, 'aws');
    expect(await metric(watcher, 'hollowtrees_node_watcher_notices_total', { type: 'hollowtrees.node.aws.scheduled-maintenance' })).toBe(1);
  });

  it('Google Cloud: a second host maintenance after the first ended reaches the plugin again, under an id of its own', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const watcher = await gcpWatcher(core.url, gce);

    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the first maintenance at the plugin', () => plugin.events.length === 1);
    gce.setMaintenanceEvent('NONE');
    await until('the hanging GETs re-armed', async () => gce.waiting === 2 && (await metric(watcher, 'hollowtrees_node_watcher_polls_total', { cloud: 'gcp' })) >= 4);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the second maintenance at the plugin', () => plugin.events.length === 2);
    await until('the hanging GETs re-armed', () => gce.waiting === 2);

    expect(plugin.events.map((e) => e.type)).toEqual(['hollowtrees.node.gcp.host-maintenance', 'hollowtrees.node.gcp.host-maintenance']);
    expect(plugin.events[1]!.id).not.toBe(plugin.events[0]!.id);
    expect(await accepted(watcher)).toBe(2);
  });

  it('Google Cloud: a maintenance in a later boot (the first one stopped the VM) reaches the plugin under an id of its own, though the watcher that sees it is a new process', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const first = await gcpWatcher(core.url, gce, BOOT[0]);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the first maintenance at the plugin', () => plugin.events.length === 1);

    // TERMINATE_ON_HOST_MAINTENANCE stops the VM: the watcher goes with it, and starts again in the next boot.
    await first.stop();
    gce.setMaintenanceEvent('NONE');
    const second = await gcpWatcher(core.url, gce, BOOT[1]);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the second maintenance at the plugin', () => plugin.events.length === 2);

    expect(plugin.events[1]!.id).not.toBe(plugin.events[0]!.id);
    expect(await accepted(second)).toBe(1);
    expect(await deduplicated(core)).toBe(0);
  });

  it('Google Cloud: a watcher restarted during a maintenance, in the same boot, sends it under the same id: core deduplicates it, the plugin acts once', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const first = await gcpWatcher(core.url, gce);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    gce.preempt();
    await until('the maintenance and the preemption at the plugin', () => plugin.events.length === 2);

    await first.stop();
    const again = await gcpWatcher(core.url, gce);
    await until('both notices sent again and accepted', async () => (await accepted(again)) === 2);

    expect(await deduplicated(core)).toBe(2);
    expect(plugin.events.map((e) => e.type).sort()).toEqual(['hollowtrees.node.gcp.host-maintenance', 'hollowtrees.node.gcp.preemption']);
  });

  it('Google Cloud --state-file: a watcher restarted in the same boot during a maintenance that came back sends that one\'s id, not the first\'s: it reaches the plugin, once', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const stateFile = join(mkdtempSync(join(tmpdir(), 'watcher-state-')), 'occurrences.json');
    const first = await gcpWatcher(core.url, gce, BOOT[0], stateFile);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the first maintenance at the plugin', () => plugin.events.length === 1);
    gce.setMaintenanceEvent('NONE');
    await until('the hanging GETs re-armed', async () => gce.waiting === 2 && (await metric(first, 'hollowtrees_node_watcher_polls_total', { cloud: 'gcp' })) >= 4);

    // Restarted (an OOM kill) while the value reads NONE; the maintenance comes back to the new process, then it restarts again.
    await first.stop();
    const second = await gcpWatcher(core.url, gce, BOOT[0], stateFile);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the second maintenance at the plugin', () => plugin.events.length === 2);
    await second.stop();
    const third = await gcpWatcher(core.url, gce, BOOT[0], stateFile);
    await until('the second maintenance sent again and accepted', async () => (await accepted(third)) === 1);

    expect(plugin.events[1]!.id).not.toBe(plugin.events[0]!.id);
    expect(await deduplicated(core)).toBe(1);
    expect(plugin.events).toHaveLength(2);
  });

  it('Google Cloud --state-file that can no longer be written (a read-only or full filesystem): the log says the state file could not be written, which path, and what a restart then does; the notice is still sent', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const stateFile = join(mkdtempSync(join(tmpdir(), 'watcher-state-')), 'occurrences.json');
    const watcher = await gcpWatcher(core.url, gce, BOOT[0], stateFile);
    // Written at start; from now on its temporary file's place is taken (as root, a read-only directory would not stop the write).
    mkdirSync(`${stateFile}.tmp`);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the maintenance at the plugin', () => plugin.events.length === 1);

    const failed = watcher.lines.filter((l) => l.level === 'warn' && String(l.msg).includes('state file'));
    expect(failed).toEqual([
      expect.objectContaining({
        msg: 'cannot write the state file (--state-file): a watcher restarted in this boot starts from what the file held before, so a maintenance that came back may be acted on again under a new id, or taken for the first one and not acted on; this watcher goes on with what it holds in memory',
        cloud: 'gcp',
        path: stateFile,
        error: `EISDIR: illegal operation on a directory, open '${stateFile}.tmp'`,
      }),
    ]);
    expect(watcher.lines.some((l) => l.msg === 'metadata request failed; retrying')).toBe(false);
  });

  it('Google Cloud --state-file that cannot be read: the log says so, which path, and that the watcher starts as without one', async () => {
    const { core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const stateFile = join(mkdtempSync(join(tmpdir(), 'watcher-state-')), 'occurrences.json');
    writeFileSync(stateFile, '{"owner": "half-written');
    const watcher = await gcpWatcher(core.url, gce, BOOT[0], stateFile);

    expect(watcher.lines.filter((l) => String(l.msg).includes('state file'))).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: "cannot read the state file (--state-file): this watcher starts as without one, so a maintenance that came back before this restart is sent under the first one's id, which core takes for a re-send while its group cools down",
        cloud: 'gcp',
        path: stateFile,
        error: expect.stringMatching(/JSON/),
      }),
    ]);
  });

  it('Google Cloud: a page or an empty answer in place of the value (a broken proxy) is no end of the maintenance: it is not sent again under a new id', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const watcher = await gcpWatcher(core.url, gce);

    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the maintenance at the plugin', () => plugin.events.length === 1);
    // What a proxy in between answers with 200 instead of the value, once with a page and once empty.
    for (const garbage of ['<html><body>502 Bad Gateway</body></html>', '']) {
      const errors = await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'gcp' });
      gce.setMaintenanceEvent(garbage as GceMaintenanceEvent);
      await until('the answer refused', async () => (await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'gcp' })) > errors);
      gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
      await until('the hanging GETs re-armed', () => gce.waiting === 2);
    }
    // Events go to core in order: once the preemption is through, a second send of the maintenance would be too.
    gce.preempt();
    await until('the preemption at the plugin', () => plugin.events.some((e) => e.type === 'hollowtrees.node.gcp.preemption'));

    expect(plugin.events.map((e) => e.type)).toEqual(['hollowtrees.node.gcp.host-maintenance', 'hollowtrees.node.gcp.preemption']);
    expect(await accepted(watcher)).toBe(2);
    expect(await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'gcp' })).toBeGreaterThanOrEqual(2);
  });

  it('Azure: an event Azure withdraws and posts again is sent again by the running watcher, and deduplicated by core while its group cools down', async () => {
    const { plugin, core } = await coreWithPlugin();
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: azure.url })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Terminate' });
    await until('the event at the plugin', () => plugin.events.length === 1);

    azure.endEvent(id);
    await morePolls(watcher, 'azure', 2);
    azure.scheduleEvent({ EventId: id, EventType: 'Terminate' });
    await until('the notice sent again', async () => (await accepted(watcher)) === 2);
    await morePolls(watcher, 'azure');

    expect(await accepted(watcher)).toBe(2);
    expect(plugin.events).toHaveLength(1);
  });

  it('Azure: an answer that is no Scheduled Events document (a proxy answering {} with 200) is no empty list: the event is not sent again when the real document lists it', async () => {
    const { plugin, core } = await coreWithPlugin();
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: azure.url })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Terminate' });
    await until('the event at the plugin', () => plugin.events.length === 1);
    const listed = plugin.events[0]!;

    azure.answerRaw('{}');
    await morePolls(watcher, 'azure', 2);
    const event = { EventId: id, EventType: 'Terminate', ResourceType: 'VirtualMachine', Resources: [azure.vm.name], EventStatus: 'Scheduled', NotBefore: '', Description: '', EventSource: 'Platform', DurationInSeconds: -1 };
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: azure.incarnation, Events: [event] }));
    await morePolls(watcher, 'azure');

    expect(await accepted(watcher)).toBe(1);
    expect(plugin.events).toEqual([listed]);
  });
});
