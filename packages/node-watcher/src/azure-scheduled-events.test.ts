import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { startAzureMetadataStandIn, type AzureMetadataStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureScheduledEventsMonitor } from './azure-scheduled-events.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function monitorOf(azure: AzureMetadataStandIn) {
  closers.push(() => azure.close());
  const monitor = new AzureScheduledEventsMonitor({ baseUrl: azure.url, pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
  const signal = new AbortController().signal;
  return { monitor, signal, identity: await monitor.identity(signal) };
}

describe('AzureScheduledEventsMonitor', () => {
  it('a scheduled event that is no object (a broken IMDS or proxy) does not hide the one beside it', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: 2, Events: [null, 5, { EventId: 'E-1', EventType: 'Preempt', EventStatus: 'Scheduled', Resources: [azure.vm.name], NotBefore: '' }] }));
    expect(await monitor.check(identity, signal)).toMatchObject([{ kind: 'preempt', id: `E-1:${azure.vm.vmId}` }]);
  });

  it('Events that is no list fails naming the URL, not with a TypeError', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: 2, Events: 'none' }));
    await expect(monitor.check(identity, signal)).rejects.toThrow(`GET ${azure.url}/metadata/scheduledevents?api-version=2020-07-01: expected Events to be a list, got "none"`);
  });

  it('Resources written as a string does not match a VM whose name is only part of it', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: 2, Events: [{ EventId: 'E-2', EventType: 'Preempt', EventStatus: 'Scheduled', Resources: `${azure.vm.name}0`, NotBefore: '' }] }));
    expect(await monitor.check(identity, signal)).toEqual([]);
  });

  it('matches this VM in Resources whatever the case Azure wrote its name in (Azure names are case-insensitive), and a Resources entry that is no string matches nothing', async () => {
    const azure = await startAzureMetadataStandIn({ vm: { name: 'AKS-Spot-12345678-vmss000001' } });
    const { monitor, signal, identity } = await monitorOf(azure);
    const event = { EventType: 'Preempt', EventStatus: 'Scheduled', NotBefore: '' };
    azure.answerRaw(
      JSON.stringify({
        DocumentIncarnation: 2,
        Events: [
          { ...event, EventId: 'E-3', Resources: [null, 7, 'aks-spot-12345678-vmss000001'] },
          { ...event, EventId: 'E-4', Resources: ['aks-spot-12345678-vmss000002'] },
        ],
      }),
    );
    expect(await monitor.check(identity, signal)).toMatchObject([{ kind: 'preempt', id: `E-3:${azure.vm.vmId}` }]);
  });
});

describe('AzureScheduledEventsMonitor identity', () => {
  it('reads the VM from the compute API, its zone written as AKS writes it (region-number), none outside zones', async () => {
    const zoned = await monitorOf(await startAzureMetadataStandIn());
    expect(zoned.identity).toEqual({
      instanceId: '02aab8a4-74ef-476e-8182-f6d2ba4166a6',
      instanceType: 'Standard_D4s_v5',
      availabilityZone: 'westeurope-2',
      region: 'westeurope',
      extraLabels: { vm_name: 'aks-spot-12345678-vmss000001' },
    });
    const regional = await monitorOf(await startAzureMetadataStandIn({ vm: { zone: '' } }));
    expect(regional.identity).toMatchObject({ availabilityZone: '', region: 'westeurope' });
  });

  it('fails, naming the URL, when the compute API gives no vmId or no name', async () => {
    for (const vm of [{ vmId: '' }, { name: '' }]) {
      const azure = await startAzureMetadataStandIn({ vm });
      await expect(monitorOf(azure)).rejects.toThrow(`GET ${azure.url}/metadata/instance/compute?api-version=2021-02-01&format=json: no vmId or name in the answer`);
    }
  });
});

describe('AzureScheduledEventsMonitor check', () => {
  it('a document with neither Events nor DocumentIncarnation (a proxy answering {}) is a failed read; one without Events lists none', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    azure.answerRaw('{}');
    await expect(monitor.check(identity, signal)).rejects.toThrow(`GET ${azure.url}/metadata/scheduledevents?api-version=2020-07-01: no Scheduled Events document (neither Events nor DocumentIncarnation): {}`);
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: 3 }));
    expect(await monitor.check(identity, signal)).toEqual([]);
    // Either field is enough: an answer with Events alone is a document.
    azure.answerRaw(JSON.stringify({ Events: [] }));
    expect(await monitor.check(identity, signal)).toEqual([]);
  });

  it('quotes at most 200 characters of an answer it cannot read', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    const long = 'x'.repeat(300);
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: 2, Events: long }));
    await expect(monitor.check(identity, signal)).rejects.toThrow(new RegExp(`expected Events to be a list, got "x{199}$`));
    azure.answerRaw(JSON.stringify({ proxy: long }));
    await expect(monitor.check(identity, signal)).rejects.toThrow(new RegExp(`\\(neither Events nor DocumentIncarnation\\): \\{"proxy":"x{190}$`));
  });

  it('acts on the event types asked for (Preempt and Terminate by default), each with its NotBefore as the termination time', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    const notBefore = 'Wed, 02 Dec 2026 06:30:00 GMT';
    const terminate = azure.scheduleEvent({ EventType: 'Terminate', NotBefore: notBefore });
    azure.scheduleEvent({ EventType: 'Reboot' });
    azure.scheduleEvent({ EventType: 'Freeze' });
    azure.scheduleEvent({ EventId: '', EventType: 'Preempt' });
    expect(await monitor.check(identity, signal)).toEqual([
      { kind: 'terminate', id: `${terminate}:${identity.instanceId}`, terminationTime: '2026-12-02T06:30:00.000Z', detail: expect.objectContaining({ EventId: terminate }) },
    ]);
    const reboots = new AzureScheduledEventsMonitor({ baseUrl: azure.url, eventTypes: ['Reboot'], pollIntervalMs: 1_000, backoff: () => 1, clock: manualClock() });
    expect((await reboots.check(identity, signal)).map((n) => n.kind)).toEqual(['reboot']);
  });
});

describe('AzureScheduledEventsMonitor approve', () => {
  it('approves an event of this VM alone that is still scheduled; not one Azure no longer lists, has started, or that names other VMs too', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    const noticeId = (eventId: string): string => `${eventId}:${identity.instanceId}`;
    const alone = azure.scheduleEvent();
    const started = azure.scheduleEvent({ EventStatus: 'Started', NotBefore: '' });
    const shared = azure.scheduleEvent({ Resources: [azure.vm.name, 'aks-spot-12345678-vmss000002'] });
    expect(await monitor.approve(noticeId(started), signal)).toBe('started');
    expect(await monitor.approve(noticeId(shared), signal)).toBe('shared');
    expect(await monitor.approve(noticeId('0B1C2D3E-0000-0000-0000-000000000000'), signal)).toBe('gone');
    expect(azure.started).toEqual([]);
    expect(await monitor.approve(noticeId(alone), signal)).toBe('approved');
    expect(azure.started).toEqual([alone]);
  });

  it('approves an event without EventStatus (an older API version\'s answer, whose events are all approvable)', async () => {
    const azure = await startAzureMetadataStandIn();
    const { monitor, signal, identity } = await monitorOf(azure);
    const eventId = azure.scheduleEvent();
    azure.answerRaw(JSON.stringify({ DocumentIncarnation: 2, Events: [{ EventId: eventId, EventType: 'Preempt', Resources: [azure.vm.name], NotBefore: '' }] }));
    expect(await monitor.approve(`${eventId}:${identity.instanceId}`, signal)).toBe('approved');
    expect(azure.started).toEqual([eventId]);
  });
});
