import { systemClock, type Clock } from '@hollowtrees/grpcplugin';
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

/** A monitor watching a metadata stand-in, on a clock that moves only when told unless given one; closed after the test. */
async function watching<C extends Clock = ManualClock>(options: {
  hangSeconds: number;
  withoutEtag?: boolean;
  clock?: C;
  /** Called at each answer, before the monitor reads the time again. */
  polled?: () => void;
}): Promise<{ clock: C; gce: GceMetadataStandIn; found: Notice[]; calls: (key: string) => number; preemptedCalls: () => number }> {
  const clock = options.clock ?? (manualClock() as Clock as C);
  const gce = await startGceMetadataStandIn({ withoutEtag: options.withoutEtag ?? false });
  closers.push(() => gce.close());
  const monitor = new GcpMetadataMonitor({ baseUrl: gce.url, hangSeconds: options.hangSeconds, backoff: () => 1, clock });
  const stop = new AbortController();
  const identity = await monitor.identity(stop.signal);
  const found: Notice[] = [];
  const watch = monitor.watch(identity, { notices: (_part, n) => found.push(...n), polled: options.polled ?? (() => {}), metadataError: () => {} }, stop.signal);
  closers.push(async () => {
    stop.abort();
    await watch;
  });
  const calls = (key: string): number => gce.calls.filter((c) => c.path.endsWith(`/${key}`)).length;
  return { clock, gce, found, calls, preemptedCalls: () => calls('preempted') };
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
