import { systemClock, type Clock } from '@hollowtrees/grpcplugin';
import { manualClock, type ManualClock } from '@hollowtrees/grpcplugin/testing';
import { startGceMetadataStandIn, type GceMaintenanceEvent, type GceMetadataStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { GcpMetadataMonitor } from './gcp-metadata.js';
import { PartialCheckError } from './monitor.js';
import { noticeId, type Notice } from './notice.js';
import { until } from './test-support/watch-harness.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A monitor watching a metadata stand-in, on a clock that moves only when told unless given one; closed after the test. */
async function watching<C extends Clock = ManualClock>(options: {
  hangSeconds: number;
  withoutEtag?: boolean;
  bootId?: string;
  clock?: C;
  /** Called at each answer, before the monitor reads the time again. */
  polled?: () => void;
}): Promise<{ clock: C; gce: GceMetadataStandIn; found: Notice[]; lists: Array<{ part: string; ids: string[] }>; calls: (key: string) => number; preemptedCalls: () => number }> {
  const clock = options.clock ?? (manualClock() as Clock as C);
  const gce = await startGceMetadataStandIn({ withoutEtag: options.withoutEtag ?? false });
  closers.push(() => gce.close());
  const monitor = new GcpMetadataMonitor({ baseUrl: gce.url, hangSeconds: options.hangSeconds, ...(options.bootId !== undefined && { bootId: options.bootId }), backoff: () => 1, clock });
  const stop = new AbortController();
  const identity = await monitor.identity(stop.signal);
  const found: Notice[] = [];
  const lists: Array<{ part: string; ids: string[] }> = [];
  const notices = (part: string, n: readonly Notice[]): void => {
    found.push(...n);
    lists.push({ part, ids: n.map((x) => x.id) });
  };
  const watch = monitor.watch(identity, { notices, polled: options.polled ?? (() => {}), metadataError: () => {}, stateFileError: () => {} }, stop.signal);
  closers.push(async () => {
    stop.abort();
    await watch;
  });
  const calls = (key: string): number => gce.calls.filter((c) => c.path.endsWith(`/${key}`)).length;
  return { clock, gce, found, lists, calls, preemptedCalls: () => calls('preempted') };
}

describe('GcpMetadataMonitor', () => {
  it('waits a second before it asks again when a hanging GET came back unchanged at once', async () => {
    // A hang of 10 ms: the server answers unchanged almost at once, as a proxy that ignores wait_for_change would.
    const { clock, gce, found, preemptedCalls } = await watching({ hangSeconds: 0.01 });

    // The first read, then one hanging GET that times out unchanged; then the loop sleeps on the clock.
    await until('two GETs of preempted, then both loops asleep', () => preemptedCalls() === 2 && clock.sleeping === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(preemptedCalls()).toBe(2);

    clock.advance(1_000);
    await until('the next GET once the second passed', () => preemptedCalls() === 3);
    expect(found).toEqual([]);
  });

  it('without ETags (a proxy that strips them) it reads once a second, not in a busy loop, and still finds a preemption', async () => {
    const { clock, gce, found, preemptedCalls } = await watching({ hangSeconds: 60, withoutEtag: true });

    // Each GET answers at once with nothing to hang on next time: both loops sleep on the clock after one read.
    await until('one GET of preempted, then both loops asleep', () => preemptedCalls() === 1 && clock.sleeping === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(preemptedCalls()).toBe(1);

    gce.preempt();
    clock.advance(1_000);
    await until('the preemption found by the next read', () => found.length === 1);
    expect(found[0]).toMatchObject({ kind: 'preemption' });
  });

  it('a wall clock stepped back (NTP) while a GET was out does not stretch the second between GETs into the step', async () => {
    // Wall time as the system clock reads it, steppable; its sleeps are real timers, which a step does not move.
    let offsetMs = 0;
    const clock: Clock = { now: () => Date.now() + offsetMs, sleep: systemClock.sleep };
    let polls = 0;
    // Stepped back an hour between the start of a hanging GET that came back unchanged and the pacing after it.
    const { calls } = await watching({ hangSeconds: 0.01, clock, polled: () => ++polls === 3 && (offsetMs -= 3_600_000) });

    // Each loop's third GET comes a second after its second: not an hour later.
    await until('a third GET of each value', () => calls('preempted') >= 3 && calls('maintenance-event') >= 3);
  });
});

const INSTANCE = '4567890123456789012';
const BOOT = '3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61';
const TERMINATE: GceMaintenanceEvent = 'TERMINATE_ON_HOST_MAINTENANCE';
const signal = new AbortController().signal;

/** A stand-in, and monitors of it (each one a watcher process) in the boot asked for, on a clock that moves only when told. */
async function checking(): Promise<{ gce: GceMetadataStandIn; clock: ManualClock; monitor: (bootId?: string) => GcpMetadataMonitor }> {
  const gce = await startGceMetadataStandIn();
  closers.push(() => gce.close());
  const clock = manualClock();
  return { gce, clock, monitor: (bootId) => new GcpMetadataMonitor({ baseUrl: gce.url, ...(bootId !== undefined && { bootId }), backoff: () => 1, clock }) };
}

describe('GcpMetadataMonitor notices and their ids', () => {
  it('reads the identity: numeric id, zone and machine type by their last segment, region from the zone, the name as a label', async () => {
    const { monitor } = await checking();
    expect(await monitor().identity(signal)).toEqual({ instanceId: INSTANCE, instanceType: 'e2-standard-4', availabilityZone: 'europe-west1-b', region: 'europe-west1', extraLabels: { instance_name: 'gke-pool-1-abcd' } });
    const gce = await startGceMetadataStandIn({ instance: { id: '<html>' } });
    closers.push(() => gce.close());
    await expect(new GcpMetadataMonitor({ baseUrl: gce.url, backoff: () => 1, clock: manualClock() }).identity(signal)).rejects.toThrow(/computeMetadata\/v1\/instance\/id/);
  });

  it('finds nothing while preempted is FALSE and maintenance-event NONE or MIGRATE_ON_HOST_MAINTENANCE (a live migration, nothing to do)', async () => {
    const { gce, monitor } = await checking();
    const m = monitor(BOOT);
    const identity = await m.identity(signal);
    expect(await m.check(identity, signal)).toEqual([]);
    gce.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    expect(await m.check(identity, signal)).toEqual([]);
  });

  it('a preemption ends 30 s after it was seen; a host maintenance has no end; each id names the instance, the notice and the boot', async () => {
    const { gce, clock, monitor } = await checking();
    const m = monitor(BOOT);
    const identity = await m.identity(signal);
    gce.preempt();
    gce.setMaintenanceEvent(TERMINATE);
    expect(await m.check(identity, signal)).toEqual([
      { kind: 'preemption', id: noticeId(INSTANCE, 'preemption', BOOT), terminationTime: new Date(clock.now() + 30_000).toISOString(), detail: { preempted: 'TRUE' } },
      { kind: 'host-maintenance', id: noticeId(INSTANCE, 'host-maintenance', TERMINATE, BOOT), detail: { maintenanceEvent: TERMINATE } },
    ]);
  });

  it('the same notice keeps its ids in another process of the same boot, gets new ones in another boot, and names the instance alone without a boot id', async () => {
    const { gce, monitor } = await checking();
    gce.preempt();
    gce.setMaintenanceEvent(TERMINATE);
    const ids = async (bootId?: string): Promise<string[]> => {
      const m = monitor(bootId);
      return (await m.check(await m.identity(signal), signal)).map((n) => n.id);
    };
    const inBoot = await ids(BOOT);
    expect(await ids(BOOT)).toEqual(inBoot);
    const nextBoot = await ids('9b0e4d7c-2a51-4f83-b6c9-1d8e3a7f5c20');
    expect(nextBoot).toHaveLength(2);
    expect(nextBoot.filter((id) => inBoot.includes(id))).toEqual([]);
    expect(await ids()).toEqual([noticeId(INSTANCE, 'preemption'), noticeId(INSTANCE, 'host-maintenance', TERMINATE)]);
  });

  it.each(['terminate_on_host_maintenance', '_NONE', 'NONE.', '<p>NONE', ''])('an answer that is no value of maintenance-event (%j) fails naming the URL and the answer, and does not hide the preemption', async (garbage) => {
    const { gce, monitor } = await checking();
    const m = monitor(BOOT);
    const identity = await m.identity(signal);
    gce.preempt();
    gce.setMaintenanceEvent(garbage as GceMaintenanceEvent);
    const err = await m.check(identity, signal).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PartialCheckError);
    expect((err as PartialCheckError).message).toBe(`GET ${gce.url}/computeMetadata/v1/instance/maintenance-event: HTTP 200, and the answer is no value of maintenance-event: "${garbage}"`);
    expect((err as PartialCheckError).found.map((n) => n.kind)).toEqual(['preemption']);
  });

  it('watching: a maintenance keeps its id while it stands; one that comes back after a read showed it gone gets an id naming when it came back, kept while it stands', async () => {
    // Without ETags every GET answers at once and the next waits a second on the clock: each advance is one more read.
    const { clock, gce, lists } = await watching({ hangSeconds: 60, withoutEtag: true, bootId: BOOT });
    const maintenance = (): string[][] => lists.filter((l) => l.part === 'maintenance-event').map((l) => l.ids);
    const read = async (value?: GceMaintenanceEvent): Promise<string[]> => {
      if (value) gce.setMaintenanceEvent(value);
      const before = maintenance().length;
      clock.advance(1_000);
      await until('one more read of each value', () => maintenance().length > before && clock.sleeping === 2);
      return maintenance().at(-1)!;
    };
    await until('the first reads', () => maintenance().length === 1 && clock.sleeping === 2);
    const first = noticeId(INSTANCE, 'host-maintenance', TERMINATE, BOOT);

    expect(await read(TERMINATE)).toEqual([first]);
    expect(await read()).toEqual([first]);
    expect(await read('NONE')).toEqual([]);
    const second = [noticeId(first, new Date(clock.now() + 1_000).toISOString())];
    expect(await read(TERMINATE)).toEqual(second);
    expect(await read()).toEqual(second);
    // Read garbled in between: no read of the value, so no end of the maintenance.
    gce.setMaintenanceEvent('<html>' as GceMaintenanceEvent);
    clock.advance(1_000);
    await until('the garbled answer read, and its loop asleep on its backoff', () => gce.calls.filter((c) => c.path.endsWith('/maintenance-event')).length >= 7 && clock.sleeping === 2);
    expect(await read(TERMINATE)).toEqual(second);
    await read('NONE');
    const third = [noticeId(first, new Date(clock.now() + 1_000).toISOString())];
    expect(await read(TERMINATE)).toEqual(third);
    expect(third).not.toEqual(second);
  });
});
