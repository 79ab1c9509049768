import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { startAzureMetadataStandIn, type AzureMetadataStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureScheduledEventsMonitor } from './azure-scheduled-events.js';
import type { Notice } from './notice.js';
import { MAX_RETRY_WAIT_MS } from './poll-loop.js';
import { until } from './test-support/watch-harness.js';

let azure: AzureMetadataStandIn | undefined;
afterEach(async () => {
  await azure?.close();
  azure = undefined;
});

describe('pollLoop', () => {
  it('after failed checks waits at most 5 s, however far the backoff grew: an Azure Preempt gives only 30 s', async () => {
    azure = await startAzureMetadataStandIn();
    const clock = manualClock();
    // A backoff grown long while the metadata service failed.
    const monitor = new AzureScheduledEventsMonitor({ baseUrl: azure.url, pollIntervalMs: 1_000, backoff: () => 600_000, clock });
    const stop = new AbortController();
    const identity = await monitor.identity(stop.signal);
    const found: Notice[] = [];
    const errors: Error[] = [];
    azure.faults.fail(1, 500);
    const watching = monitor.watch(identity, { notices: (_part, n) => found.push(...n), polled: () => {}, metadataError: (err) => errors.push(err), stateFileError: (err) => errors.push(err) }, stop.signal);
    try {
      await until('a failed check, then its wait', () => errors.length === 1 && clock.sleeping === 1);
      azure.scheduleEvent({ EventType: 'Preempt' });
      clock.advance(MAX_RETRY_WAIT_MS);
      await until('the Preempt seen', () => found.length === 1);
      expect(found[0]!.kind).toBe('preempt');
      expect(MAX_RETRY_WAIT_MS).toBe(5_000);
    } finally {
      stop.abort();
      await watching;
    }
  });
});
