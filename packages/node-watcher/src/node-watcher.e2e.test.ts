import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labelsOf } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { freePort, makeTestCertificates, startAzureMetadataStandIn, startGceMetadataStandIn, startImdsStandIn, tempDir, type ImdsStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Registry } from 'prom-client';
import { azureNoticeId } from './azure-scheduled-events.js';
import { runWatcher } from './run-watcher.js';
import { capturedLogger, Cleanups, holdOtherGroups, metric, morePolls, OTHER_FLOW, startCore, startCoreWithConfig, startPrefixProxy, startRecordingPlugin, startTestWatcher, testSettings, until } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** The `vmId` of the Azure stand-in's VM unless told otherwise. */
const AZURE_VM_ID = '02aab8a4-74ef-476e-8182-f6d2ba4166a6';

async function coreWithPlugin(port = 0) {
  const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
  const core = cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
  return { plugin, core };
}

describe('node watcher → core → plugin, over real HTTP and gRPC', () => {
  it('AWS: a spot interruption notice reaches the plugin once, with the instance labels', async () => {
    const { plugin, core } = await coreWithPlugin();
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());
    await morePolls(watcher, 'aws', 2);
    expect(plugin.events).toHaveLength(0);

    imds.interruptSpot({ action: 'terminate', time: '2026-11-30T00:02:00Z' });
    await until('the event at the plugin', () => plugin.events.length === 1);
    await morePolls(watcher, 'aws');

    expect(plugin.events).toHaveLength(1);
    const event = plugin.events[0]!;
    expect(event.type).toBe('hollowtrees.node.aws.spot-interruption');
    expect(labelsOf(event)).toEqual({
      cloud: 'aws',
      instance_id: 'i-0abc123def4567890',
      node: 'node-a',
      instance_type: 'm5.large',
      availability_zone: 'us-east-1a',
      region: 'us-east-1',
      termination_time: '2026-11-30T00:02:00.000Z',
      instance_action: 'terminate',
    });
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })).toBe(1);
  });

  it('AWS: a token that expires mid-run is renewed after the 401, and the next notice still arrives', async () => {
    const { plugin, core } = await coreWithPlugin();
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());
    await morePolls(watcher, 'aws', 2);
    expect(imds.tokensIssued).toBe(1);

    imds.expireTokens();
    imds.recommendRebalance('2026-11-30T00:00:00Z');
    await until('the rebalance event at the plugin', () => plugin.events.length === 1);

    expect(plugin.events[0]!.type).toBe('hollowtrees.node.aws.rebalance-recommendation');
    expect(imds.tokensIssued).toBe(2);
    expect(imds.calls.some((c) => c.status === 401)).toBe(true);
    // The 401 was answered by a new token within the same poll, not counted as a failed poll.
    expect(await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'aws' })).toBe(0);
  });

  it('AWS: metadata errors are retried and counted, and the notice still arrives', async () => {
    const { plugin, core } = await coreWithPlugin();
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());
    await morePolls(watcher, 'aws', 1);

    imds.faults.fail(3, 500);
    imds.faults.dropConnection(1);
    imds.setTargetLifecycleState('Terminated');
    await until('the lifecycle event at the plugin', () => plugin.events.length === 1);

    expect(plugin.events[0]!.type).toBe('hollowtrees.node.aws.autoscaling-termination');
    expect(await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'aws' })).toBeGreaterThanOrEqual(1);
    const health = await fetch(`http://127.0.0.1:${watcher.health.port}/healthz`);
    expect(health.status).toBe(200);
  });

  it.each<[string, (imds: ImdsStandIn, path: string) => void]>([
    ['keeps failing (HTTP 500)', (imds, path) => imds.faults.failPath(path, 500)],
    ['never answers (a stalled proxy)', (imds, path) => imds.faults.hangPath(path)],
  ])('AWS: one IMDS path that %s neither hides nor delays the spot interruption another path shows', async (_broken, fault) => {
    const { plugin, core } = await coreWithPlugin();
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    // Broken for good: a category the watcher reads besides the spot action.
    const broken = '/latest/meta-data/events/maintenance/scheduled';
    fault(imds, broken);
    // A backoff of 10 minutes (capped at 5 s): a spot action polled with the broken path would wait it out.
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url }), { backoff: () => 600_000 }), (w) => w.stop());
    // The broken path asked, and the spot action read (nothing yet) since: the next read of it sees the notice.
    await until('the broken path asked', () => imds.calls.some((c) => c.path === broken));
    const asked = imds.calls.length;
    await until('the spot action read again', () => imds.calls.slice(asked).some((c) => c.path === '/latest/meta-data/spot/instance-action'));

    const raisedAt = Date.now();
    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('the event at the plugin', () => plugin.events.length === 1);
    // A metadata request is given 5 s, and a failed one waits up to 5 s: a poll held by the broken path would hold the notice back that long.
    expect(Date.now() - raisedAt).toBeLessThan(4_000);
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.aws.spot-interruption');
    // Still counted and logged, naming the path (a stalled one once its request is given up, after 5 s).
    await until('the broken path logged', () => watcher.lines.some((l) => l.msg === 'metadata request failed; retrying' && String(l.error).includes('events/maintenance/scheduled')), 8_000);
  });

  it('/readyz answers 503 with the reason until the instance identity is read, while /healthz answers 200', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    // Every request fails until the faults are cleared: the identity cannot be read.
    imds.faults.fail(1_000_000, 500);
    const watcher = cleanups.add(await startTestWatcher(testSettings({ dryRun: true, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());
    const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`http://127.0.0.1:${watcher.health.port}${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    await until('an identity read failed', async () => (await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'aws' })) >= 1);
    expect(await get('/readyz')).toMatchObject({ status: 503, body: { status: 'not ready', reason: expect.stringMatching(/^the instance identity has not been read from the aws metadata service yet: .*500/) as string } });
    expect((await get('/healthz')).status).toBe(200);
    imds.faults.clear();
    await until('ready', async () => (await get('/readyz')).status === 200);
    expect((await get('/readyz')).body).toMatchObject({ status: 'ready', instance_id: 'i-0abc123def4567890' });
  });

  it('without --cloud, says at once which metadata services it asks and for how long, before any of them answered', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    // Off-cloud, the link-local address answers nothing: each probe hangs until its own timeout.
    for (const path of ['/latest/api/token', '/computeMetadata/v1/instance/id', '/metadata/instance/compute']) imds.faults.hangPath(path);
    const { logger, lines } = capturedLogger();
    const starting = runWatcher(testSettings({ dryRun: true, once: true, metadataUrl: imds.url }), { logger, registry: new Registry(), backoff: () => 20 });
    cleanups.add(starting, async (s) => {
      imds.faults.clear();
      await (await s.catch(() => undefined))?.stop();
    });
    await until('the three probes asked', () => imds.calls.length >= 3);
    // Before, nothing was said until every probe had timed out (2 s), and then only that it was retrying.
    await until('the detection, said', () => lines.some((l) => l.msg === 'detecting the cloud: asking each metadata service (pass --cloud to skip this)'), 1_500);
    expect(lines.find((l) => String(l.msg).startsWith('detecting the cloud'))).toMatchObject({ level: 'info', metadata: imds.url, for_up_to_s: 120 });
    expect(lines.some((l) => l.msg === 'cannot detect the cloud; retrying')).toBe(false);
  });

  it('a metadata service out at start is asked again: live but not ready meanwhile, then the cloud is detected and watched, with no exit into a crash loop', async () => {
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    imds.faults.fail(1_000_000, 503);
    const port = await freePort();
    const { logger, lines } = capturedLogger();
    const starting = runWatcher(testSettings({ dryRun: true, metadataUrl: imds.url, listen: `127.0.0.1:${port}` }), { logger, registry: new Registry(), backoff: () => 20 });
    // Stopped however the test ends; the faults cleared first, or detection would go on asking.
    cleanups.add(starting, async (s) => {
      imds.faults.clear();
      await (await s.catch(() => undefined))?.stop();
    });
    await until('a failed detection, logged', () => lines.some((l) => l.msg === 'cannot detect the cloud; retrying'));
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', reason: expect.stringContaining(`the cloud is not detected yet: no metadata service at ${imds.url} answered`) as string });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    imds.faults.clear();
    const running = await starting;
    await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200);
    expect(running.watcher.status()).toMatchObject({ cloud: 'aws', instance_id: 'i-0abc123def4567890' });
  });

  it.each([
    ['AWS, an empty instance-id', 'aws', ''],
    ['AWS, a proxy page for instance-id', 'aws', '<html><body>Service Unavailable</body></html>'],
    ['Google Cloud, an empty id', 'gcp', ''],
  ] as const)('%s (a broken metadata proxy answering 200) is no identity: not ready, naming it, rather than events of a blank instance whose ids every such node shares', async (_case, cloud, id) => {
    const metadata = cleanups.add(cloud === 'aws' ? await startImdsStandIn({ instance: { instanceId: id } }) : await startGceMetadataStandIn({ instance: { id } }), (s) => s.close());
    const { logger } = capturedLogger();
    const running = cleanups.add(await runWatcher(testSettings({ dryRun: true, cloud, metadataUrl: metadata.url }), { logger, registry: new Registry(), backoff: () => 20 }), (w) => w.stop());
    await until('the identity refused', () => running.watcher.notReady()?.includes('not an instance id') === true);
    expect(running.watcher.status()).toMatchObject({ instance_id: null });
  });

  it('a failed read of the instance identity is retried within 5 s, however far the backoff grew', async () => {
    const clock = manualClock();
    const imds = cleanups.add(await startImdsStandIn({ now: clock.now }), (s) => s.close());
    imds.faults.fail(1, 500);
    const { logger } = capturedLogger();
    const running = cleanups.add(await runWatcher(testSettings({ dryRun: true, cloud: 'aws', metadataUrl: imds.url }), { logger, registry: new Registry(), clock, backoff: () => 600_000 }), (w) => w.stop());
    await until('a failed identity read, then its wait', () => running.watcher.notReady()?.includes('HTTP 500') === true && clock.sleeping === 1);
    clock.advance(5_000);
    await until('the identity read', () => running.watcher.notReady() === undefined);
  });

  it('core down when the notice appears: the event arrives once core is back, once', async () => {
    const port = await freePort();
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `http://127.0.0.1:${port}`, cloud: 'aws', metadataUrl: imds.url })), (w) => w.stop());

    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('three failed sends', async () => (await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'failed' })) >= 3);
    expect(await metric(watcher, 'hollowtrees_node_watcher_events_pending')).toBe(1);
    // Polling goes on while the send is pending.
    await morePolls(watcher, 'aws', 3);

    cleanups.add(await startCore(plugin.address, { port }), (c) => c.close());
    await until('the event at the plugin', () => plugin.events.length === 1);
    await morePolls(watcher, 'aws');
    expect(plugin.events).toHaveLength(1);
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })).toBe(1);
    expect(await metric(watcher, 'hollowtrees_node_watcher_events_pending')).toBe(0);
  });

  it('Google Cloud: a preemption seen through the hanging GET reaches the plugin once', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'gcp', metadataUrl: gce.url })), (w) => w.stop());
    await until('both hanging GETs armed', () => gce.waiting === 2);

    gce.preempt();
    await until('the event at the plugin', () => plugin.events.length === 1);
    gce.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    await until('the hanging GETs re-armed', () => gce.waiting === 2);

    expect(plugin.events).toHaveLength(1);
    const labels = labelsOf(plugin.events[0]!);
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.gcp.preemption');
    expect(labels).toMatchObject({ cloud: 'gcp', instance_id: '4567890123456789012', node: 'node-a', instance_type: 'e2-standard-4', availability_zone: 'europe-west1-b', region: 'europe-west1', instance_name: 'gke-pool-1-abcd' });
    expect(Date.parse(labels.termination_time!)).toBeGreaterThan(Date.now());
    // The watcher waits on the server: every answered GET after the first read carried the last ETag.
    expect(gce.calls.filter((c) => c.path.endsWith('/preempted')).length).toBeLessThan(5);
    expect(await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })).toBe(1);
  });

  it('Google Cloud: the wall clock stepped 2 h forward after the start (NTP after a VM resumed): a preemption\'s termination_time and /healthz\'s last_poll are on the stepped wall clock', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'gcp', metadataUrl: gce.url })), (w) => w.stop());
    await until('both hanging GETs armed', () => gce.waiting === 2);
    // The watcher runs on the steady clock, which a step does not move; what it sends and shows must move with it.
    const wall = Date.now;
    vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
    cleanups.add(undefined, () => vi.restoreAllMocks());

    gce.preempt();
    await until('the event at the plugin', () => plugin.events.length === 1);
    const terminationTime = Date.parse(labelsOf(plugin.events[0]!).termination_time!);
    expect(Math.abs(terminationTime - (Date.now() + 30_000))).toBeLessThan(10_000);
    const { last_poll } = (await (await fetch(`http://127.0.0.1:${watcher.health.port}/healthz`)).json()) as { last_poll: string };
    expect(Math.abs(Date.parse(last_poll) - Date.now())).toBeLessThan(10_000);
  });

  it('Google Cloud: TERMINATE_ON_HOST_MAINTENANCE becomes a host-maintenance event', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'gcp', metadataUrl: gce.url })), (w) => w.stop());
    await until('both hanging GETs armed', () => gce.waiting === 2);
    gce.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.gcp.host-maintenance');
  });

  it('Azure: a Preempt of this VM reaches the plugin once; events for other VMs are ignored', async () => {
    const { plugin, core } = await coreWithPlugin();
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: azure.url })), (w) => w.stop());
    await morePolls(watcher, 'azure', 1);

    azure.scheduleEvent({ EventType: 'Preempt', Resources: ['aks-spot-12345678-vmss000007'] });
    azure.scheduleEvent({ EventType: 'Reboot' });
    const mine = azure.scheduleEvent({ EventType: 'Preempt', NotBefore: 'Mon, 30 Nov 2026 00:00:30 GMT' });
    await until('the event at the plugin', () => plugin.events.length === 1);
    await morePolls(watcher, 'azure');

    expect(plugin.events).toHaveLength(1);
    expect(plugin.events[0]!.id).toBe(azureNoticeId(mine, AZURE_VM_ID));
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.azure.preempt');
    expect(labelsOf(plugin.events[0]!)).toEqual({
      cloud: 'azure',
      instance_id: AZURE_VM_ID,
      node: 'node-a',
      instance_type: 'Standard_D4s_v5',
      availability_zone: 'westeurope-2',
      region: 'westeurope',
      termination_time: '2026-11-30T00:00:30.000Z',
      vm_name: 'aks-spot-12345678-vmss000001',
    });
    expect(await metric(watcher, 'hollowtrees_node_watcher_notices_total', { type: 'hollowtrees.node.azure.preempt' })).toBe(1);
  });

  it('Azure --azure-approve: approves the event once its flow run succeeded', async () => {
    const { plugin, core } = await coreWithPlugin();
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: azure.url, azureApprove: true })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Preempt' });
    await until('the event approved', () => azure.started.length === 1);
    expect(azure.started).toEqual([id]);
    expect(plugin.events.map((e) => e.id)).toEqual([azureNoticeId(id, AZURE_VM_ID)]);
  });

  it.each([0, 1_000])('Azure --azure-approve: waits for every flow run of the event, not the first to succeed (%i groups of other events held before it)', async (others) => {
    let releaseDrain!: () => void;
    const drainHeld = new Promise<void>((resolve) => (releaseDrain = resolve));
    const notify = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const drain = cleanups.add(await startRecordingPlugin(() => drainHeld), (p) => p.close());
    const flow = (plugin: string): string => `    allowedEvents: [hollowtrees.node.*.*]\n    plugins: [${plugin}]`;
    const yaml = `
plugins:
  notify: { type: grpc, address: "${notify.address}" }
  drain: { type: grpc, address: "${drain.address}", timeout: 30s }
flows:
  notify:
${flow('notify')}
  drain:
${flow('drain')}
${OTHER_FLOW}`;
    const core = cleanups.add(await startCoreWithConfig(yaml, 'two-flows.yaml', {}), (c) => c.close());
    // Held first, these groups fill the status API's default page: the event's own come after them.
    await holdOtherGroups(core, others);
    // Before core closes, which waits for the run, should the test fail first.
    cleanups.add(drainHeld, () => releaseDrain());
    // Only to count the watcher's looks at core's runs.
    const proxy = cleanups.add(await startPrefixProxy('/core', core.url), (p) => p.close());
    const runReads = (): number => proxy.paths.filter((p) => p.startsWith('/core/api/v1/status/runs')).length;
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${proxy.url}/core`, cloud: 'azure', metadataUrl: azure.url, azureApprove: true })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Preempt' });

    await until('the notify run succeeded while the drain runs', () => drain.events.length === 1 && core.engine.recentRuns().some((r) => r.flow === 'notify' && r.outcome === 'succeeded'));
    const reads = runReads();
    await until('two more looks at the runs, or an approval', () => runReads() >= reads + 2 || azure.started.length > 0);
    expect(azure.started).toEqual([]);
    releaseDrain();
    await until('the event approved', () => azure.started.length === 1);
    expect(azure.started).toEqual([id]);
  });

  it('Azure: one event naming two VMs reaches the plugin for each; --azure-approve approves it from neither, since it would let both go ahead', async () => {
    let releaseB!: () => void;
    const heldB = new Promise<void>((resolve) => (releaseB = resolve));
    // A flow without groupBy: a group is one event id.
    const plugin = cleanups.add(await startRecordingPlugin((e) => (labelsOf(e)['node'] === 'node-b' ? heldB : undefined)), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const vms = ['a', 'b'].map((x) => ({ name: `vm-${x}`, vmId: `00000000-0000-0000-0000-00000000000${x}` }));
    const stands = await Promise.all(vms.map(async (vm) => cleanups.add(await startAzureMetadataStandIn({ vm }), (s) => s.close())));
    // Azure lists one event for every VM it affects (an availability set's host update, a scale set's eviction).
    const EventId = '5D1D8E2A-7F1B-4C4B-9E7A-2B7C8A1D3E4F';
    for (const stand of stands) stand.scheduleEvent({ EventId, EventType: 'Terminate', Resources: vms.map((vm) => vm.name) });
    const watchers = await Promise.all(
      stands.map(async (stand, i) => cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: stand.url, nodeName: `node-${'ab'[i]}`, azureApprove: true })), (w) => w.stop())),
    );
    await until('both runs started', () => plugin.events.length === 2);
    expect(plugin.events.map((e) => e.id).sort()).toEqual(vms.map((vm) => azureNoticeId(EventId, vm.vmId)).sort());
    // node-a's run succeeded, node-b's drain still runs: nothing may tell Azure to go ahead.
    await until('vm-a declined to approve', () => watchers[0]!.lines.some((l) => String(l.msg).startsWith('not approving the Azure event: it names other VMs too')));
    releaseB();
    await until('vm-b declined to approve', () => watchers[1]!.lines.some((l) => String(l.msg).startsWith('not approving the Azure event: it names other VMs too')));
    expect(stands.map((s) => s.started)).toEqual([[], []]);
  });

  it('Azure --azure-approve: an event no flow runs is not approved, and core is not asked about it again', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCoreWithConfig(`plugins:\n  rec: { type: grpc, address: "${plugin.address}" }\nflows:\n  aws-only:\n    allowedEvents: [hollowtrees.node.aws.*]\n    plugins: [rec]\n`, 'aws-only.yaml', {}), (c) => c.close());
    // Only to count the watcher's looks at core's runs.
    const proxy = cleanups.add(await startPrefixProxy('/core', core.url), (p) => p.close());
    const runReads = (): number => proxy.paths.filter((p) => p.startsWith('/core/api/v1/status/runs')).length;
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: `${proxy.url}/core`, cloud: 'azure', metadataUrl: azure.url, azureApprove: true })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Preempt' });

    await until('the decision not to approve', () => watcher.lines.some((l) => l.event_id === azureNoticeId(id, AZURE_VM_ID) && String(l.msg).startsWith('not approving the Azure event: no flow of core runs it')));
    const reads = runReads();
    await morePolls(watcher, 'azure');
    expect(runReads()).toBe(reads);
    expect(azure.started).toEqual([]);
    expect(plugin.events).toEqual([]);
  });

  it('Azure --azure-approve: never approves an event whose flow run failed, nor after a re-send whose run failed too', async () => {
    const plugin = cleanups.add(await startRecordingPlugin(() => Promise.reject(new Error('drain failed'))), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address), (c) => c.close());
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: azure.url, azureApprove: true })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Preempt' });
    await until('the refusal to approve', () => watcher.lines.some((l) => l.event_id === azureNoticeId(id, AZURE_VM_ID) && String(l.msg).startsWith('a flow run of the Azure event failed')));
    // Sent again --max-resends times (3), each run failing: none is approved.
    await until('the re-sends spent', async () => (await metric(watcher, 'hollowtrees_node_watcher_failed_runs_total', { outcome: 'resend_limit' })) === 1);
    expect(plugin.events).toHaveLength(4);
    expect(azure.started).toEqual([]);
  });

  it('Azure --azure-approve: an event Azure has started already is not approved (Azure refuses it), and not asked again', async () => {
    const { plugin, core } = await coreWithPlugin();
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'azure', metadataUrl: azure.url, azureApprove: true })), (w) => w.stop());
    const id = azure.scheduleEvent({ EventType: 'Preempt', EventStatus: 'Started', NotBefore: '' });
    await until('the event at the plugin', () => plugin.events.length === 1);
    await until('the decision not to approve', () => watcher.lines.some((l) => l.event_id === azureNoticeId(id, AZURE_VM_ID) && l.msg === 'not approving the Azure event: Azure has started it already'));
    expect(azure.calls.filter((c) => c.method === 'POST')).toEqual([]);
    expect(watcher.lines.filter((l) => l.msg === 'cannot approve the Azure event yet; trying again')).toEqual([]);
  });

  it('detects the cloud when --cloud is not given', async () => {
    const { plugin, core } = await coreWithPlugin();
    const azure = cleanups.add(await startAzureMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, metadataUrl: azure.url })), (w) => w.stop());
    azure.scheduleEvent({ EventType: 'Terminate' });
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(watcher.watcher.status()).toMatchObject({ cloud: 'azure' });
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.azure.terminate');
  });

  it('without NODE_NAME, says at start that events will name no node, which a drain on Google Cloud or Azure cannot find by instance id', async () => {
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ dryRun: true, cloud: 'gcp', metadataUrl: gce.url, nodeName: undefined })), (w) => w.stop());
    await until('watching', () => watcher.watcher.notReady() === undefined);
    expect(watcher.lines.find((l) => l.level === 'warn' && typeof l.msg === 'string' && l.msg.startsWith('NODE_NAME is not set'))).toMatchObject({ cloud: 'gcp' });

    const named = cleanups.add(await startTestWatcher(testSettings({ dryRun: true, cloud: 'gcp', metadataUrl: gce.url, nodeName: 'gke-pool-1-abcd' })), (w) => w.stop());
    await until('watching', () => named.watcher.notReady() === undefined);
    expect(named.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('NODE_NAME'))).toEqual([]);
  });

  it('examples/node-watcher/hollowtrees.yaml drains the node named in the event, once for two notices of one node', async () => {
    const example = new URL('../../../examples/node-watcher/hollowtrees.yaml', import.meta.url).pathname;
    const drain = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCoreWithConfig(await readFile(example, 'utf8'), example, { K8S_DRAIN_ADDRESS: drain.address }), (c) => c.close());
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url, nodeName: 'ip-10-0-1-23.ec2.internal' })), (w) => w.stop());

    imds.interruptSpot({ time: '2026-11-30T00:02:00Z' });
    await until('the drain call', () => drain.events.length === 1);
    imds.setTargetLifecycleState('Terminated');
    await until('the second notice accepted', async () => (await metric(watcher, 'hollowtrees_node_watcher_sends_total', { outcome: 'accepted' })) === 2);

    expect(drain.events).toHaveLength(1);
    expect(labelsOf(drain.events[0]!)).toMatchObject({ node: 'ip-10-0-1-23.ec2.internal', termination_time: '2026-11-30T00:02:00.000Z' });
  });

  it('Google Cloud: a hanging GET that fails is re-armed after a backoff, and the errors are counted', async () => {
    const { plugin, core } = await coreWithPlugin();
    const gce = cleanups.add(await startGceMetadataStandIn(), (s) => s.close());
    const watcher = cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'gcp', metadataUrl: gce.url })), (w) => w.stop());
    await until('both hanging GETs armed', () => gce.waiting === 2);

    gce.faults.fail(2, 503);
    // The maintenance GET answers, and its next two tries meet the faults.
    gce.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    await until('two metadata errors', async () => (await metric(watcher, 'hollowtrees_node_watcher_metadata_errors_total', { cloud: 'gcp' })) === 2);
    await until('both hanging GETs armed again', () => gce.waiting === 2);
    gce.preempt();
    await until('the event at the plugin', () => plugin.events.length === 1);
    expect(plugin.events[0]!.type).toBe('hollowtrees.node.gcp.preemption');
  });

  it('sends to an https:// core whose certificate --ca-file trusts', async () => {
    const certs = makeTestCertificates();
    const dir = cleanups.add(await tempDir('watcher-tls'), (d) => d.remove());
    await writeFile(join(dir.path, 'cert.pem'), certs.server.cert);
    await writeFile(join(dir.path, 'key.pem'), certs.server.key);
    const plugin = cleanups.add(await startRecordingPlugin(), (p) => p.close());
    const core = cleanups.add(await startCore(plugin.address, { server: `  tls: { cert: ${dir.path}/cert.pem, key: ${dir.path}/key.pem }` }), (c) => c.close());
    expect(core.url).toMatch(/^https:/);
    const imds = cleanups.add(await startImdsStandIn(), (s) => s.close());
    cleanups.add(await startTestWatcher(testSettings({ coreUrl: core.url, cloud: 'aws', metadataUrl: imds.url, ca: Buffer.from(certs.ca.cert) })), (w) => w.stop());
    imds.recommendRebalance('2026-11-30T00:00:00Z');
    await until('the event at the plugin', () => plugin.events.length === 1);
  });
});
