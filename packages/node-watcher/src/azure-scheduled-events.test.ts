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
