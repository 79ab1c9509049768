import { manualClock, type ManualClock } from '@hollowtrees/grpcplugin/testing';
import { startGceMetadataStandIn, type GceMetadataStandIn } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { GcpMetadataMonitor } from './gcp-metadata.js';
import type { Notice } from './notice.js';
import { until } from './test-support/watch-harness.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A monitor watching a metadata stand-in on a clock that moves only when told; closed after the test. */
async function watching(options: { hangSeconds: number; withoutEtag?: boolean }): Promise<{ clock: ManualClock; gce: GceMetadataStandIn; found: Notice[]; preemptedCalls: () => number }> {
  const clock = manualClock();
  const gce = await startGceMetadataStandIn({ withoutEtag: options.withoutEtag ?? false });
  closers.push(() => gce.close());
  const monitor = new GcpMetadataMonitor({ baseUrl: gce.url, hangSeconds: options.hangSeconds, backoff: () => 1, clock });
  const stop = new AbortController();
  const identity = await monitor.identity(stop.signal);
  const found: Notice[] = [];
  const watch = monitor.watch(identity, { notices: (n) => found.push(...n), polled: () => {}, metadataError: () => {} }, stop.signal);
  closers.push(async () => {
    stop.abort();
    await watch;
  });
  return { clock, gce, found, preemptedCalls: () => gce.calls.filter((c) => c.path.endsWith('/preempted')).length };
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
});
