import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, PluginError, type Clock, type CloudEvent, type LogLevel, type PluginResponse } from '@hollowtrees/grpcplugin';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config/load-config.js';
import { createLogger } from '../logger.js';
import type { ActionPlugin, PluginCall } from '../plugins/action-plugin.js';
import { DropLog } from './drop-log.js';
import { EngineMetrics } from './engine-metrics.js';
import { FlowEngine, MAX_RESTARTS, type FlowEngineOptions } from './flow-engine.js';
import { approximateBytes } from './event-bytes.js';
import { FlowSlots } from './bounded-queue.js';
import { GroupStates, type GroupChange, type GroupState, type RunProgress } from './group-states.js';
import type { ClaimResult } from '../state/run-state-store.js';
import { HeldBytes } from './held-bytes.js';
import { fullDisk, slowDisk } from '../../test/support/journal-disks.js';
import { JournalRunStateStore } from '../state/journal-store.js';
import { readJournal, StateJournal } from '../state/state-journal.js';
import { groupView } from '../receiver/status-view.js';
import { manualClock } from '@hollowtrees/grpcplugin/testing';

type Behaviour = (event: CloudEvent, call: PluginCall) => Promise<Partial<PluginResponse> | void> | Partial<PluginResponse> | void;

interface ScriptedPlugin extends ActionPlugin {
  calls: Array<{ event: CloudEvent; call: PluginCall }>;
}

function scripted(name: string, behaviour: Behaviour = () => {}, attempts = 3): ScriptedPlugin {
  const calls: ScriptedPlugin['calls'] = [];
  return {
    name,
    timeoutMs: 1_000,
    retry: { attempts, initialBackoff: 100, maxBackoff: 1_000, multiplier: 2 },
    calls,
    async invoke(event, call) {
      calls.push({ event, call });
      const r = await behaviour(event, call);
      return { status: 'ok', message: '', attributes: {}, ...r };
    },
    close: () => {},
  };
}

/** A plugin whose call takes 10 s unless its run is cancelled, then fails CANCELLED. */
const untilCancelled = (name: string): ScriptedPlugin =>
  scripted(name, (_e, call) => new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 10_000);
    call.signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new PluginError(Code.Canceled, 'cancelled'));
    });
  }));

const alert = (name: string, labels: Record<string, string>, id = `${name}-${JSON.stringify(labels)}`): CloudEvent => ({
  id, source: 's', specversion: '1.0', type: `prometheus.server.alert.${name}`, data: { labels: { alertname: name, ...labels } },
});

function engineFor(yaml: string, plugins: ScriptedPlugin[], logger: Logger = pino({ level: 'silent' }), clock?: Clock, shared: Partial<Pick<FlowEngineOptions, 'store' | 'heldBytes' | 'metrics' | 'slots'>> = {}): { engine: FlowEngine; metrics: EngineMetrics } {
  // Declared so validation knows the names; the engine gets the scripted plugins themselves.
  const declared = `plugins:\n${plugins.map((p) => `  ${p.name}: { type: grpc, address: "unused:1" }`).join('\n')}\n`;
  const { config } = parseConfig(declared + yaml, 'test.yaml', {});
  const metrics = shared.metrics ?? new EngineMetrics(new Registry());
  const engine = new FlowEngine({ flows: config.flows, plugins: new Map(plugins.map((p) => [p.name, p])), logger, random: () => 1, ...(clock ? { clock } : {}), ...shared, metrics });
  return { engine, metrics };
}

/** A logger at `level` whose lines the test reads back, parsed. */
const capture = (level: LogLevel = 'debug'): { logger: Logger; lines: Array<Record<string, unknown>> } => {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: createLogger(level, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
};

const counter = async (metrics: EngineMetrics, name: string, labels: Record<string, string>): Promise<number> => {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
};

/** The sum and count of a histogram series. */
const histogram = async (metrics: EngineMetrics, name: string, labels: Record<string, string>): Promise<{ sum: number; count: number }> => {
  const values = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [];
  const of = (suffix: string): number =>
    values.find((v) => (v as { metricName?: string }).metricName === `${name}_${suffix}` && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  return { sum: of('sum'), count: of('count') };
};

const spotFlow = (extra = '', plugins = '[a]') => `
flows:
  spot:
    allowedEvents: [prometheus.server.alert.Spot]
    groupBy: [instance_id]
    cooldown: 5m
    plugins: ${plugins}
${extra}`;

describe('FlowEngine', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('runs plugins in order, merging returned attributes into the labels the next plugin sees', async () => {
    const a = scripted('a', () => ({ attributes: { node: 'ip-1', drained: 'true' } }));
    const b = scripted('b');
    const { engine } = engineFor(spotFlow('', '[a, b]'), [a, b]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.runAllTimersAsync();
    expect(a.calls).toHaveLength(1);
    expect((b.calls[0]!.event.data as { labels: object }).labels).toEqual({ alertname: 'Spot', instance_id: 'i-1', node: 'ip-1', drained: 'true' });
    expect((a.calls[0]!.event.data as { labels: object }).labels).toEqual({ alertname: 'Spot', instance_id: 'i-1' });
    expect(engine.recentRuns()[0]).toMatchObject({ outcome: 'succeeded', calls: [{ plugin: 'a', code: 'OK' }, { plugin: 'b', code: 'OK' }] });
  });

  it('two copies of one alert dispatched together start exactly one run; the rest are counted', async () => {
    const a = scripted('a');
    const { engine, metrics } = engineFor(spotFlow(), [a]);
    const results = Array.from({ length: 50 }, () => engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now()));
    await vi.runAllTimersAsync();
    expect(results.filter((r) => r.started === 1)).toHaveLength(1);
    expect(results.filter((r) => r.deduplicated === 1)).toHaveLength(49);
    expect(a.calls).toHaveLength(1);
    expect(await counter(metrics, 'hollowtrees_events_deduplicated_total', { flow: 'spot' })).toBe(49);
  });

  it('logs at debug why an event ran nowhere: which flow refused its type, which filter failed, which group holds it until when', async () => {
    const { logger, lines } = capture();
    const a = scripted('a');
    const { engine } = engineFor(spotFlow(`  other:\n    allowedEvents: [prometheus.server.alert.*]\n    filters: { instance_action: [terminate, stop] }\n    plugins: [a]\n`), [a], logger);
    engine.dispatch(alert('Rebalance', { instance_id: 'i-1', instance_action: 'reboot' }), Date.now());
    expect(lines.find((l) => l.msg === 'event matched no flow')).toMatchObject({
      level: 'debug',
      type: 'prometheus.server.alert.Rebalance',
      flows: {
        spot: 'type is "prometheus.server.alert.Rebalance", expected one of allowedEvents [prometheus.server.alert.Spot]',
        other: 'instance_action is "reboot", expected one of [terminate, stop]',
      },
    });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'first'), Date.now());
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'copy'), Date.now());
    expect(lines.find((l) => l.eventId === 'copy')).toMatchObject({ level: 'debug', flow: 'spot', groupKey: 'spot:{instance_id="i-1"}', phase: 'running', heldBy: 'first', msg: 'event deduplicated: a run of its group is in progress' });
    await vi.runAllTimersAsync();
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'later'), Date.now());
    expect(lines.find((l) => l.eventId === 'later')).toMatchObject({ phase: 'cooling', until: '2026-11-25T10:05:00.000Z', msg: 'event deduplicated: its group is cooling down' });
  });

  it('groups by the groupBy keys: other instances run in parallel, other labels do not split a group', async () => {
    const a = scripted('a');
    const { engine } = engineFor(spotFlow(), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1', severity: 'warning' }), Date.now());
    engine.dispatch(alert('Spot', { instance_id: 'i-1', severity: 'critical' }), Date.now());
    engine.dispatch(alert('Spot', { instance_id: 'i-2' }), Date.now());
    await vi.runAllTimersAsync();
    expect(a.calls.map((c) => (c.event.data as { labels: { instance_id: string } }).labels.instance_id)).toEqual(['i-1', 'i-2']);
  });

  it('a cooldown holds the group, then releases it', async () => {
    const a = scripted('a');
    const { engine } = engineFor(spotFlow(), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'first'), Date.now());
    await vi.advanceTimersByTimeAsync(10);
    expect(engine.groups()).toMatchObject([{ phase: 'cooling', until: Date.parse('2026-11-25T10:05:00Z') }]);
    await vi.advanceTimersByTimeAsync(4 * 60_000 + 59_000);
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'second'), Date.now()).deduplicated).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'third'), Date.now()).started).toBe(1);
    await vi.runAllTimersAsync();
    expect(a.calls.map((c) => c.event.id)).toEqual(['first', 'third']);
  });

  it('retries a retryable code with exponential backoff, then succeeds: one run, three attempts', async () => {
    const a = scripted('a', (_e, call) => {
      if (call.attempt < 3) throw new PluginError(Code.Unavailable, 'down');
    });
    const { engine } = engineFor(spotFlow(), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(a.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(a.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // 100 ms after the first failure
    expect(a.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(a.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1); // 200 ms after the second
    expect(a.calls.map((c) => c.call.attempt)).toEqual([1, 2, 3]);
    const [run] = engine.recentRuns();
    expect(run).toMatchObject({ outcome: 'succeeded', calls: [{ code: 'UNAVAILABLE' }, { code: 'UNAVAILABLE' }, { code: 'OK' }] });
  });

  it('a permanent code fails the run at once, later plugins are not called, and the group is free again', async () => {
    const a = scripted('a', () => {
      throw new PluginError(Code.NotFound, 'no such node');
    });
    const b = scripted('b');
    const { engine, metrics } = engineFor(spotFlow('', '[a, b]'), [a, b]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.runAllTimersAsync();
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(0);
    expect(engine.recentRuns()[0]).toMatchObject({ outcome: 'failed', error: 'a: NOT_FOUND: no such node' });
    expect(engine.groups()).toEqual([]);
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now()).started).toBe(1);
    await vi.runAllTimersAsync();
    expect(await counter(metrics, 'hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'failed' })).toBe(2);
  });

  it('gives up after the attempt limit and fails the run', async () => {
    const a = scripted('a', () => {
      throw new PluginError(Code.ResourceExhausted, 'throttled');
    }, 4);
    const { engine } = engineFor(spotFlow('    runRetry: { attempts: 1 }'), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.runAllTimersAsync();
    expect(a.calls).toHaveLength(4);
    expect(engine.recentRuns()[0]!.error).toBe('a: RESOURCE_EXHAUSTED after 4 attempts: throttled');
  });

  it('an unexpected error from a plugin fails the run as INTERNAL', async () => {
    const a = scripted('a', () => {
      throw new Error('boom');
    });
    const { engine } = engineFor(spotFlow(), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.runAllTimersAsync();
    expect(engine.recentRuns()[0]!.error).toBe('a: INTERNAL: boom');
  });

  it('every matching flow gets the event, each with its own group', async () => {
    const a = scripted('a');
    const b = scripted('b');
    const { engine } = engineFor(
      `
flows:
  drain: { allowedEvents: [prometheus.server.alert.*], groupBy: [instance_id], plugins: [a] }
  notify: { allowedEvents: [prometheus.server.alert.Spot], filters: { severity: critical }, plugins: [b] }
  other: { allowedEvents: [aws.ec2.spot.interruption], plugins: [b] }
`,
      [a, b],
    );
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-1', severity: 'critical' }), Date.now())).toEqual({ matched: 2, started: 2, deduplicated: 0, dropped: [] });
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-2', severity: 'info' }), Date.now())).toMatchObject({ matched: 1, started: 1 });
    await vi.runAllTimersAsync();
    expect([a.calls.length, b.calls.length]).toEqual([2, 1]);
  });

  it('an event handed in with flows that settled it before runs in the others only: those pass it by as deduplicated', async () => {
    const a = scripted('a');
    const b = scripted('b');
    const { engine, metrics } = engineFor(
      `
flows:
  spot: { allowedEvents: [prometheus.server.alert.Spot], groupBy: [instance_id], plugins: [a] }
  replace: { allowedEvents: [prometheus.server.alert.Spot], groupBy: [instance_id], plugins: [b] }
`,
      [a, b],
    );
    const heard: string[] = [];
    const result = engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now(), (s) => heard.push(s.flow), { settled: new Set(['replace']) });
    expect(result).toEqual({ matched: 2, started: 1, deduplicated: 1, dropped: [] });
    await vi.runAllTimersAsync();
    expect([a.calls.length, b.calls.length, heard]).toEqual([1, 0, ['spot']]);
    expect(await counter(metrics, 'hollowtrees_events_deduplicated_total', { flow: 'replace' })).toBe(1);
  });

  it('bounds concurrency per flow and counts what overflows the queue', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const a = scripted('a', () => gate);
    const { engine, metrics } = engineFor(spotFlow('').replace('cooldown: 5m', 'cooldown: 5m\n    concurrency: 2\n    queueSize: 3'), [a]);
    const results = Array.from({ length: 8 }, (_, i) => engine.dispatch(alert('Spot', { instance_id: `i-${i}` }), Date.now()));
    await vi.advanceTimersByTimeAsync(0);
    expect(a.calls).toHaveLength(2);
    expect(results.map((r) => r.started)).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(results[7]!.dropped).toEqual([{ flow: 'spot', reason: 'queue_full', detail: 'its queue is full (queueSize 3)' }]);
    expect(engine.flowStatus()[0]).toMatchObject({ running: 2, queued: 3 });
    expect(await counter(metrics, 'hollowtrees_events_dropped_total', { flow: 'spot', reason: 'queue_full' })).toBe(3);
    // A dropped event does not hold its group: its next re-send can run.
    expect(engine.groups().map((g) => g.key)).not.toContain('spot:{instance_id="i-7"}');
    release();
    await vi.runAllTimersAsync();
    expect(a.calls).toHaveLength(5);
  });

  it('shutdown lets runs finish within the grace period, then cancels the rest as interrupted', async () => {
    const slow = untilCancelled('a');
    const { engine } = engineFor(spotFlow(), [slow]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    const done = engine.shutdown(1_000);
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-2' }), Date.now()).dropped).toEqual([{ flow: 'spot', reason: 'shutting_down' }]);
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    expect(engine.recentRuns()[0]).toMatchObject({ outcome: 'interrupted' });
  });

  it('a run whose hold the store loses (another replica may run its group now) is stopped and reported interrupted', async () => {
    const lose = new AbortController();
    // The kubernetes store aborts this signal when its Lease is lost (kubernetes-store.test.ts); here the engine's side.
    class LosingStore extends GroupStates {
      override holdLost(): AbortSignal {
        return lose.signal;
      }
    }
    const slow = untilCancelled('a');
    const { engine } = engineFor(spotFlow(), [slow], undefined, undefined, { store: new LosingStore() });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(slow.calls).toHaveLength(1);
    lose.abort(new Error('lost the hold on group g'));
    await vi.advanceTimersByTimeAsync(0);
    expect(slow.calls[0]!.call.signal?.aborted).toBe(true);
    expect(engine.recentRuns()[0]).toMatchObject({ outcome: 'interrupted' });
    expect(engine.groups()).toEqual([]);
  });

  it('cancels every run in flight at the end of the grace period, and a queued run that had not started never starts', async () => {
    const slow = untilCancelled('a');
    const { engine } = engineFor(spotFlow('').replace('cooldown: 5m', 'cooldown: 5m\n    concurrency: 2'), [slow]);
    for (const id of ['i-1', 'i-2', 'i-3']) engine.dispatch(alert('Spot', { instance_id: id }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(slow.calls).toHaveLength(2);
    const done = engine.shutdown(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    // The two calls in flight were cancelled; i-3 left the queue after the cancel and never ran.
    expect(slow.calls.map((c) => c.call.signal?.aborted)).toEqual([true, true]);
    expect((slow.calls[0]!.call.signal?.reason as Error).message).toBe('shutdown grace period over');
    expect(engine.recentRuns().map((r) => [r.groupKey, r.outcome, r.calls.length])).toEqual([
      ['spot:{instance_id="i-2"}', 'interrupted', 1],
      ['spot:{instance_id="i-1"}', 'interrupted', 1],
    ]);
    expect(engine.groups()).toEqual([]);
  });
});

describe('FlowEngine on an injected clock (real timers stand still)', () => {
  /** Whether `promise` settles while real time barely moves: the wait is on the injected clock, not a timer. */
  const settlesSoon = (promise: Promise<unknown>): Promise<boolean> =>
    Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000))]);

  it('shutdown counts its grace period on the clock, then cancels the run in flight', async () => {
    const clock = manualClock();
    const a = untilCancelled('a');
    const { engine } = engineFor(spotFlow(), [a], undefined, clock);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), clock.now());
    await vi.waitFor(() => expect(a.calls).toHaveLength(1));
    const stopped = engine.shutdown(60_000);
    clock.advance(59_999);
    expect(await settlesSoon(stopped)).toBe(false);
    clock.advance(1);
    expect(await settlesSoon(stopped)).toBe(true);
    expect(engine.recentRuns()[0]).toMatchObject({ outcome: 'interrupted' });
    expect(clock.sleeping).toBe(0);
  });

  it('a run waiting for its next try starts when the clock reaches its retryAt', async () => {
    const clock = manualClock();
    let down = true;
    const a = scripted('a', () => {
      if (down) throw new PluginError(Code.Unavailable, 'restarting');
    }, 1);
    const { engine } = engineFor(spotFlow('    runRetry: { attempts: 2, initialBackoff: 1m, maxBackoff: 1m }'), [a], undefined, clock);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), clock.now());
    await vi.waitFor(() => expect(engine.groups()).toMatchObject([{ phase: 'retrying' }]));
    down = false;
    const retryAt = engine.groups()[0]!.run!.retryAt!;
    clock.advance(retryAt - clock.now() - 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.calls).toHaveLength(1);
    clock.advance(1);
    await vi.waitFor(() => expect(engine.recentRuns()[0]).toMatchObject({ outcome: 'succeeded' }));
    expect(a.calls).toHaveLength(2);
  });
});

describe('FlowEngine: later tries of a failed run', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('a run that failed on retryable codes holds its group, waits, and goes on from the failing plugin with what earlier plugins returned', async () => {
    let down = true;
    const a = scripted('a', () => ({ attributes: { node: 'ip-1' } }));
    const b = scripted('b', () => {
      if (down) throw new PluginError(Code.Unavailable, 'plugin b is restarting');
    }, 2);
    const { engine, metrics } = engineFor(spotFlow('    runRetry: { attempts: 3, initialBackoff: 1m, maxBackoff: 5m }', '[a, b]'), [a, b]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'first'), Date.now());
    await vi.advanceTimersByTimeAsync(1_000);
    expect([a.calls.length, b.calls.length]).toEqual([1, 2]);
    expect(engine.groups()).toMatchObject([{ phase: 'retrying', run: { attempt: 2, next: 1, retryAt: Date.parse('2026-11-25T10:01:00.100Z') } }]);
    expect(engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 1 });
    expect(await counter(metrics, 'hollowtrees_runs_waiting_for_retry', { flow: 'spot' })).toBe(1);
    expect(await counter(metrics, 'hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'retrying' })).toBe(1);
    // A re-send meanwhile is deduplicated: the group is still held.
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'again'), Date.now()).deduplicated).toBe(1);

    down = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect([a.calls.length, b.calls.length]).toEqual([1, 3]);
    expect((b.calls[2]!.event.data as { labels: object }).labels).toMatchObject({ instance_id: 'i-1', node: 'ip-1' });
    expect(engine.groups()).toMatchObject([{ phase: 'cooling' }]);
    expect(await counter(metrics, 'hollowtrees_runs_waiting_for_retry', { flow: 'spot' })).toBe(0);
    expect(engine.recentRuns().map((r) => r.outcome)).toEqual(['succeeded', 'retrying']);
  });

  it('gives up after runRetry.attempts tries and frees the group; a permanent code is never tried again', async () => {
    const a = scripted('a', () => {
      throw new PluginError(Code.Unavailable, 'down');
    }, 1);
    const { engine } = engineFor(spotFlow('    runRetry: { attempts: 3, initialBackoff: 1m }'), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.runAllTimersAsync();
    expect(a.calls).toHaveLength(3);
    expect(engine.recentRuns().map((r) => r.outcome)).toEqual(['failed', 'retrying', 'retrying']);
    expect(engine.groups()).toEqual([]);

    const permanent = scripted('a', () => {
      throw new PluginError(Code.PermissionDenied, 'no');
    });
    const other = engineFor(spotFlow('    runRetry: { attempts: 3 }'), [permanent]).engine;
    other.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.runAllTimersAsync();
    expect(permanent.calls).toHaveLength(1);
  });
});

describe('FlowEngine: telling the source how a run ended', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('hears once, after the last try, not on the tries the engine makes itself', async () => {
    let failures = 1;
    const a = scripted('a', () => {
      if (failures-- > 0) throw new PluginError(Code.Unavailable, 'down');
    }, 1);
    const { engine } = engineFor(spotFlow('    runRetry: { attempts: 2, initialBackoff: 1m }'), [a]);
    const heard: unknown[] = [];
    const result = engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now(), (s) => heard.push(s));
    expect(result.started).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(heard).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(heard).toEqual([{ flow: 'spot', outcome: 'succeeded', firstCallAt: Date.parse('2026-11-25T10:00:00Z') }]);
    expect(engine.listeners.size).toBe(0);
  });

  it('an event handed in again only to look whether another replica still runs its group counts as deduplicated once, whether the store knew that run or had to ask', async () => {
    /** Another replica runs every group: known to holder() while `known`, else found when the run claims it. */
    class ElsewhereStore extends GroupStates {
      known = false;
      override holder(key: string, now: number): GroupState | undefined {
        return this.known ? { key, flow: 'spot', phase: 'running', eventId: 'theirs', since: now, replica: 'other' } : super.holder(key, now);
      }
      override claim(key: string): Promise<ClaimResult> {
        this.release(key);
        return Promise.resolve({ claim: 'taken', heldAs: 'running' });
      }
    }
    const store = new ElsewhereStore();
    const { engine, metrics } = engineFor(spotFlow(), [scripted('a')], undefined, undefined, { store });
    const heard: string[] = [];
    const look = (again: boolean): void => void engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now(), (s) => heard.push(s.outcome), { again });
    look(false);
    await vi.advanceTimersByTimeAsync(0);
    look(true);
    await vi.advanceTimersByTimeAsync(0);
    store.known = true;
    look(true);
    expect(heard).toEqual(['running_elsewhere', 'running_elsewhere']);
    expect(await counter(metrics, 'hollowtrees_events_deduplicated_total', { flow: 'spot' })).toBe(1);
  });

  it('a failed run names the code that ended it, to its event and to an event deduplicated against it while it ran (which never ran itself)', async () => {
    const a = scripted('a', () => {
      throw new PluginError(Code.NotFound, 'no such instance');
    });
    const { engine } = engineFor(spotFlow(), [a]);
    const heard: Array<{ outcome: string; code?: string }> = [];
    const followed: Array<{ outcome: string; code?: string }> = [];
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'one'), Date.now(), (s) => heard.push(s));
    const again = engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'two'), Date.now(), (s) => followed.push(s));
    expect(again).toMatchObject({ started: 0, deduplicated: 1, joined: 1 });
    await vi.runAllTimersAsync();
    expect(heard).toMatchObject([{ outcome: 'failed', code: 'NOT_FOUND', error: expect.stringContaining('no such instance') as string }]);
    expect(followed).toMatchObject([{ outcome: 'failed', code: 'NOT_FOUND' }]);
    expect(a.calls).toHaveLength(1);
  });

  it('an event deduplicated against a run in progress hears its success as deduplicated; one deduplicated by the cooldown hears nothing', async () => {
    const a = scripted('a', () => {});
    const { engine } = engineFor(spotFlow(), [a]);
    const heard: string[] = [];
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'one'), Date.now(), (s) => heard.push(`one ${s.outcome}`));
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'two'), Date.now(), (s) => heard.push(`two ${s.outcome}`));
    await vi.runAllTimersAsync();
    const cooling = engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'three'), Date.now(), (s) => heard.push(`three ${s.outcome}`));
    await vi.runAllTimersAsync();
    expect(cooling).toMatchObject({ started: 0, deduplicated: 1 });
    expect(cooling.joined).toBeUndefined();
    expect(heard).toEqual(['one succeeded', 'two deduplicated']);
    expect(engine.listeners.size).toBe(0);
  });

  it('a run cut short by shutdown is heard of as interrupted', async () => {
    const { engine } = engineFor(spotFlow(), [untilCancelled('a')]);
    const heard: string[] = [];
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now(), (s) => heard.push(s.outcome));
    await vi.advanceTimersByTimeAsync(10);
    const stopped = engine.shutdown(100);
    await vi.advanceTimersByTimeAsync(200);
    await stopped;
    expect(heard).toEqual(['interrupted']);
  });

  it('queued runs the shutdown grace period ends before never start: each is heard of as interrupted, and one line says they are lost', async () => {
    const { logger, lines } = capture('info');
    const a = untilCancelled('a');
    const { engine, metrics } = engineFor(spotFlow('    concurrency: 1'), [a], logger);
    const heard: string[] = [];
    for (const id of ['i-1', 'i-2', 'i-3']) engine.dispatch(alert('Spot', { instance_id: id }, id), Date.now(), (s) => heard.push(`${id} ${s.outcome}`));
    await vi.advanceTimersByTimeAsync(10);
    const stopped = engine.shutdown(100);
    await vi.advanceTimersByTimeAsync(200);
    await stopped;
    expect(a.calls).toHaveLength(1);
    expect(heard).toEqual(['i-1 interrupted', 'i-2 interrupted', 'i-3 interrupted']);
    // The run cut short says so itself; the two that never started share one line.
    expect(lines.filter((l) => l.msg === 'flow run interrupted; without state.file it is lost').map((l) => l.eventId)).toEqual(['i-1']);
    expect(lines.filter((l) => l.runs !== undefined)).toEqual([
      expect.objectContaining({ level: 'error', runs: 2, msg: 'queued runs had not started when the shutdown grace period ended; without state.file they are lost' }),
    ]);
    expect(engine.groups()).toEqual([]);
    expect(await counter(metrics, 'hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'interrupted' })).toBe(3);
    expect(await counter(metrics, 'hollowtrees_queued_event_bytes', { flow: 'spot' })).toBe(0);
  });
});

describe('FlowEngine: attributes', () => {
  it('later plugins\' attributes win over earlier ones, but never change the event\'s own labels', async () => {
    const a = scripted('a', () => ({ attributes: { instance_id: 'i-other', replacement: 'r-1' } }));
    const b = scripted('b', () => ({ attributes: { replacement: 'r-2' } }));
    const c = scripted('c');
    const { engine } = engineFor(spotFlow('', '[a, b, c]'), [a, b, c]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await engine.drain();
    expect((c.calls[0]!.event.data as { labels: object }).labels).toEqual({ alertname: 'Spot', instance_id: 'i-1', replacement: 'r-2' });
  });
});

describe('FlowEngine: memory bounds', () => {
  const big = (instance: string): CloudEvent => alert('Spot', { instance_id: instance, blob: 'x'.repeat(200_000) }, instance);
  const gate = (): { plugin: ScriptedPlugin; release: () => void } => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    return { plugin: scripted('a', () => held), release };
  };

  it('bounds what a flow holds by bytes, not only by count, and says so in the gauge', async () => {
    const { plugin, release } = gate();
    const { engine, metrics } = engineFor(spotFlow('    concurrency: 1\n    queueBytes: 1000000'), [plugin]);
    const results = Array.from({ length: 8 }, (_, i) => engine.dispatch(big(`i-${i}`), Date.now()));
    expect(results.map((r) => r.started)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(results[4]!.dropped).toEqual([{ flow: 'spot', reason: 'queue_full', detail: expect.stringMatching(/^it holds 8\d{5} bytes of events \(queueBytes\)$/) as string }]);
    const held = await counter(metrics, 'hollowtrees_queued_event_bytes', { flow: 'spot' });
    expect(held).toBeGreaterThan(800_000);
    expect(held).toBeLessThanOrEqual(1_000_000);
    release();
    await engine.drain();
    expect(await counter(metrics, 'hollowtrees_queued_event_bytes', { flow: 'spot' })).toBe(0);
  });

  it('bounds what all flows hold together', () => {
    const { plugin } = gate();
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow('    concurrency: 1')}`, 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), heldBytes: new HeldBytes(500_000) });
    const results = Array.from({ length: 4 }, (_, i) => engine.dispatch(big(`i-${i}`), Date.now()));
    expect(results.map((r) => r.started)).toEqual([1, 1, 0, 0]);
    expect(results[2]!.dropped[0]!.detail).toMatch(/^all flows hold 4\d{5} bytes of events \(state.maxQueuedBytes\)$/);
  });

  it('has no room once a flow refused an event for want of it, until the flow has drained to 90% of its queue', async () => {
    // Each call waits until the test lets it go.
    const waiting: Array<() => void> = [];
    const plugin = scripted('a', () => new Promise<void>((resolve) => waiting.push(resolve)));
    const { engine } = engineFor(spotFlow('    concurrency: 1\n    queueSize: 20'), [plugin]);
    const send = (id: string) => engine.dispatch(alert('Spot', { instance_id: id }, id), Date.now());
    for (let i = 0; i < 21; i++) send(`i-${i}`);
    await vi.waitFor(() => expect(waiting).toHaveLength(1));
    // One running, 20 waiting: full, but nothing was refused yet.
    expect(engine.noRoom()).toBeUndefined();
    expect(send('i-21').dropped).toHaveLength(1);
    expect(engine.noRoom()).toBe('flow "spot": its queue is full (queueSize 20)');
    waiting.shift()!();
    await vi.waitFor(() => expect(waiting).toHaveLength(1));
    // 19 waiting is still above 90% of 20.
    expect(engine.noRoom()).toBe('flow "spot": its queue is full (queueSize 20)');
    waiting.shift()!();
    await vi.waitFor(() => expect(waiting).toHaveLength(1));
    expect(engine.noRoom()).toBeUndefined();
    // Room until the next refusal: a nearly full queue is not enough.
    send('i-22');
    send('i-23');
    expect(engine.noRoom()).toBeUndefined();
    const releasing = setInterval(() => waiting.splice(0).forEach((resolve) => resolve()), 1);
    await engine.drain();
    clearInterval(releasing);
  });

  it('names the byte bound a refusing flow is still near, its own or all flows\'', () => {
    const { plugin } = gate();
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow('    concurrency: 1\n    queueBytes: 420000\n')}`, 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), heldBytes: new HeldBytes(1_000_000) });
    const results = Array.from({ length: 3 }, (_, i) => engine.dispatch(big(`i-${i}`), Date.now()));
    expect(results.map((r) => r.started)).toEqual([1, 1, 0]);
    expect(engine.noRoom()).toMatch(/^flow "spot": it holds 4\d{5} bytes of events \(queueBytes\)$/);

    // Two events of about 200 kB held: above 90% of either bound.
    const shared = new HeldBytes(430_000);
    const both = (flows: typeof config.flows): FlowEngine =>
      new FlowEngine({ flows, plugins: new Map([['a', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), heldBytes: shared });
    const full = both(config.flows);
    [0, 1, 2].forEach((i) => full.dispatch(big(`g-${i}`), Date.now()));
    expect(full.noRoom()).toMatch(/^flow "spot": all flows hold 4\d{5} bytes of events \(state.maxQueuedBytes\)$/);
  });

  it('has room while any flow could take an event: only when every flow is full is a batch refused before it is parsed', () => {
    const { plugin } = gate();
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow('    concurrency: 1\n    queueSize: 1\n')}  other:\n    allowedEvents: [prometheus.server.alert.Other]\n    concurrency: 1\n    queueSize: 1\n    plugins: [a]\n`, 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()) });
    ['i-0', 'i-1', 'i-2'].forEach((id) => engine.dispatch(alert('Spot', { instance_id: id }, id), Date.now()));
    // "spot" refused i-2, "other" has taken nothing.
    expect(engine.noRoom()).toBeUndefined();
    ['o-0', 'o-1', 'o-2'].forEach((id) => engine.dispatch(alert('Other', { instance_id: id }, id), Date.now()));
    expect(engine.noRoom()).toBe('flow "spot": its queue is full (queueSize 1); flow "other": its queue is full (queueSize 1)');
  });

  it('bounds how many groups are held; a cooldown that is over makes room', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') });
    try {
      const a = scripted('a');
      const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow()}`, 'test.yaml', {});
      const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', a]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store: new GroupStates(undefined, 2) });
      engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
      engine.dispatch(alert('Spot', { instance_id: 'i-2' }), Date.now());
      expect(engine.dispatch(alert('Spot', { instance_id: 'i-3' }), Date.now()).dropped).toEqual([{ flow: 'spot', reason: 'too_many_groups', detail: '2 groups are held (state.maxGroups)' }]);
      // Held groups are still deduplicated, not refused.
      expect(engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now()).deduplicated).toBe(1);
      await vi.advanceTimersByTimeAsync(5 * 60_000);
      expect(engine.dispatch(alert('Spot', { instance_id: 'i-3' }), Date.now()).started).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('FlowEngine: runs survive a restart', () => {
  const flows = spotFlow('    concurrency: 1', '[a, b]');
  const engineOn = (journal: StateJournal, a: ScriptedPlugin, b: ScriptedPlugin, more: Partial<FlowEngineOptions> = {}): FlowEngine => {
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n  b: { type: grpc, address: "unused:1" }\n${flows}`, 'test.yaml', {});
    return new FlowEngine({ flows: config.flows, plugins: new Map([['a', a], ['b', b]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store: new JournalRunStateStore(journal), ...more });
  };

  it('a shutdown that cuts runs short keeps them, queued ones too, and the next process resumes each from where it stopped', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-resume-')), 'state.jsonl');
    const first = await StateJournal.open(path);
    const a1 = scripted('a', () => ({ attributes: { node: 'ip-1' } }));
    const b1 = untilCancelled('b');
    const { logger, lines } = capture('info');
    const before = engineOn(first.journal, a1, b1, { logger });
    for (const id of ['i-1', 'i-2', 'i-3']) before.dispatch(alert('Spot', { instance_id: id }), Date.now());
    expect(await before.commit()).toBe(true);
    await vi.waitFor(() => expect(b1.calls).toHaveLength(1));
    await before.shutdown(50);
    await first.journal.close();
    expect(a1.calls).toHaveLength(1);
    // One line for the queued runs, not one each.
    expect(lines.filter((l) => l.runs !== undefined)).toEqual([
      expect.objectContaining({ level: 'warn', runs: 2, msg: 'queued runs had not started when the shutdown grace period ended; they resume after the restart' }),
    ]);

    const second = await StateJournal.open(path);
    const a2 = scripted('a');
    const b2 = scripted('b');
    const after = engineOn(second.journal, a2, b2);
    expect(after.recover(second.recovered.states)).toEqual({ cooling: 0, resumed: 3, interrupted: 0, abandoned: 0 });
    await after.drain();
    // i-1 had passed a: it goes on with b, with a's attributes; the queued ones run whole.
    expect(a2.calls.map((c) => (c.event.data as { labels: { instance_id: string } }).labels.instance_id)).toEqual(['i-2', 'i-3']);
    expect(b2.calls.map((c) => (c.event.data as { labels: object }).labels)).toEqual([
      expect.objectContaining({ instance_id: 'i-1', node: 'ip-1' }),
      expect.objectContaining({ instance_id: 'i-2' }),
      expect.objectContaining({ instance_id: 'i-3' }),
    ]);
    expect(after.groups().map((g) => g.phase)).toEqual(['cooling', 'cooling', 'cooling']);
    await second.journal.close();
  });

  it('calls no plugin before the run is on disk', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-flush-first-')), 'state.jsonl');
    const disk = slowDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile });
    const a = scripted('a');
    const engine = engineOn(journal, a, scripted('b'));
    disk.holding = true;
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.waitFor(() => expect(disk.held).toHaveLength(1));
    await new Promise((r) => setTimeout(r, 50));
    expect(a.calls).toHaveLength(0);
    disk.holding = false;
    disk.held.shift()!();
    await vi.waitFor(() => expect(a.calls).toHaveLength(1));
    await engine.drain();
    await journal.close();
  });

  it('has each plugin that succeeded on disk before the next one acts, with what it returned', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-step-first-')), 'state.jsonl');
    const disk = slowDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile });
    const a = scripted('a', () => ({ attributes: { node: 'ip-1' } }));
    const b = scripted('b');
    const engine = engineOn(journal, a, b);
    disk.holding = true;
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    // The run's start, then a's success: each write held until the test lets it through.
    await vi.waitFor(() => expect(disk.held).toHaveLength(1));
    disk.held.shift()!();
    await vi.waitFor(() => expect(a.calls).toHaveLength(1));
    await vi.waitFor(() => expect(disk.held).toHaveLength(1));
    expect(engine.groups()).toMatchObject([{ phase: 'running', run: { next: 1, attributes: { node: 'ip-1' }, at: { plugin: 'b', passed: ['a'] } } }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(b.calls).toHaveLength(0);
    disk.holding = false;
    disk.held.shift()!();
    await vi.waitFor(() => expect(b.calls).toHaveLength(1));
    await engine.drain();
    await journal.close();
  });

  /** An engine on a journal in a fresh directory, with plugin `a` recording calls. */
  const journalled = async (more: Partial<FlowEngineOptions> = {}): Promise<{ journal: StateJournal; engine: FlowEngine; a: ScriptedPlugin }> => {
    const { journal } = await StateJournal.open(join(mkdtempSync(join(tmpdir(), 'hollowtrees-resume-')), 'state.jsonl'));
    const a = scripted('a');
    return { journal, engine: engineOn(journal, a, scripted('b'), more), a };
  };

  it('restores cooldowns still running and forgets those that are over', async () => {
    const { journal, engine } = await journalled();
    const now = Date.now();
    expect(engine.recover([
      { key: 'spot:{instance_id="i-over"}', flow: 'spot', phase: 'cooling', eventId: 'e1', since: now - 10_000, until: now - 1 },
      { key: 'spot:{instance_id="i-held"}', flow: 'spot', phase: 'cooling', eventId: 'e2', since: now - 10_000, until: now + 60_000 },
    ])).toEqual({ cooling: 1, resumed: 0, interrupted: 0, abandoned: 0 });
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-over' }), Date.now()).started).toBe(1);
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-held' }), Date.now()).deduplicated).toBe(1);
    await engine.drain();
    await journal.close();
  });

  it('holds a group at most its flow\'s cooldown, and a run at most runRetry.maxBackoff, from the restart: a journal from a clock a year ahead does not hold them a year', async () => {
    const clock = manualClock();
    const { journal, engine, a } = await journalled({ clock });
    const now = clock.now();
    const yearAhead = now + 365 * 24 * 3_600_000;
    const run = { event: alert('Spot', { instance_id: 'i-retry' }), attributes: {}, receivedAt: now, next: 0, attempt: 2, restarts: 0, retryAt: yearAhead };
    expect(engine.recover([
      { key: 'spot:{instance_id="i-cool"}', flow: 'spot', phase: 'cooling', eventId: 'e1', since: yearAhead - 1, until: yearAhead + 5 * 60_000 },
      { key: 'spot:{instance_id="i-retry"}', flow: 'spot', phase: 'retrying', eventId: 'e2', since: yearAhead - 1, run },
    ])).toEqual({ cooling: 1, resumed: 1, interrupted: 0, abandoned: 0 });
    // The flow's cooldown is 5m and its runRetry.maxBackoff the default 5m.
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-cool' }), clock.now()).deduplicated).toBe(1);
    clock.advance(5 * 60_000);
    await vi.waitFor(() => expect(a.calls.map((c) => (c.event.data as { labels: { instance_id: string } }).labels.instance_id)).toEqual(['i-retry']));
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-cool' }), clock.now()).started).toBe(1);
    await engine.drain();
    await journal.close();
  });

  it('a cooldown cut short at a restart stays cut short on disk: the next restart does not hold the group a whole cooldown again', async () => {
    const clock = manualClock();
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-cooldown-cut-')), 'state.jsonl');
    const yearAhead = clock.now() + 365 * 24 * 3_600_000;
    const written = await StateJournal.open(path);
    written.journal.record({ key: 'spot:{instance_id="i-cool"}', flow: 'spot', phase: 'cooling', eventId: 'e1', since: yearAhead - 1, until: yearAhead + 5 * 60_000 });
    await written.journal.close();
    /** A process on the journal: what a re-send of the cooled group's alert does after its recovery. */
    const restart = async (): Promise<{ started: number; deduplicated: number }> => {
      const { journal, recovered } = await StateJournal.open(path);
      const engine = engineOn(journal, scripted('a'), scripted('b'), { clock });
      engine.recover(recovered.states);
      const { started, deduplicated } = engine.dispatch(alert('Spot', { instance_id: 'i-cool' }), clock.now());
      await engine.drain();
      await journal.close();
      return { started, deduplicated };
    };
    // Held the flow's cooldown (5m) from the first restart; 5 minutes on, a second restart finds it over.
    expect(await restart()).toEqual({ started: 0, deduplicated: 1 });
    clock.advance(5 * 60_000);
    expect(await restart()).toEqual({ started: 1, deduplicated: 0 });
  });

  it('gives up a run that was resumed too often, and one whose flow is gone', async () => {
    const { journal, engine, a } = await journalled();
    const run = (id: string, restarts: number) => ({ event: alert('Spot', { instance_id: id }), attributes: {}, receivedAt: 1, next: 0, attempt: 1, restarts });
    const recovery = engine.recover([
      { key: 'k1', flow: 'spot', phase: 'running', eventId: 'e1', since: 1, run: run('i-1', MAX_RESTARTS) },
      { key: 'k2', flow: 'gone', phase: 'running', eventId: 'e2', since: 1, run: run('i-2', 0) },
      { key: 'k3', flow: 'spot', phase: 'running', eventId: 'e3', since: 1, run: run('i-3', MAX_RESTARTS - 1) },
    ]);
    expect(recovery).toEqual({ cooling: 0, resumed: 1, interrupted: 0, abandoned: 2 });
    await engine.drain();
    expect(a.calls).toHaveLength(1);
    expect(engine.recentRuns().map((r) => [r.groupKey, r.outcome, r.error])).toEqual([
      ['k3', 'succeeded', undefined],
      ['k2', 'failed', 'not resumed: flow gone is no longer configured'],
      ['k1', 'failed', `not resumed: it was resumed ${MAX_RESTARTS} times and never finished`],
    ]);
    await journal.close();
  });

  it('gives up a run the restart finds past the end of its flow (plugins taken out meanwhile) instead of calling it succeeded', async () => {
    const { journal, engine, a } = await journalled();
    // Written by a process whose flow had three plugins: it was to go on with the third; the flow has two now.
    const run = { event: alert('Spot', { instance_id: 'i-1' }), attributes: {}, receivedAt: 1, next: 2, attempt: 2, restarts: 0 };
    expect(engine.recover([{ key: 'k1', flow: 'spot', phase: 'retrying', eventId: 'e1', since: 1, run }])).toEqual({ cooling: 0, resumed: 0, interrupted: 0, abandoned: 1 });
    await engine.drain();
    expect(a.calls).toHaveLength(0);
    expect(engine.groups()).toEqual([]);
    expect(engine.recentRuns()).toMatchObject([{ outcome: 'failed', error: 'not resumed: flow spot has 2 plugins now; the run was to go on with its plugin 3' }]);
    await journal.close();
  });

  it('a run cut short goes on after a restart with the plugin it stopped at, found by name, when the flow\'s plugins changed meanwhile', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-resume-')), 'state.jsonl');
    const first = await StateJournal.open(path);
    const a1 = scripted('a');
    const b1 = untilCancelled('b');
    const before = engineOn(first.journal, a1, b1);
    before.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.waitFor(() => expect(b1.calls).toHaveLength(1));
    await before.shutdown(0);
    await first.journal.close();

    // The restart brings a flow with a plugin put before the two, and b still last.
    const second = await StateJournal.open(path);
    const [c2, a2, b2] = [scripted('c'), scripted('a'), scripted('b')];
    const { engine: after } = engineFor(spotFlow('', '[c, a, b]'), [c2, a2, b2], undefined, undefined, { store: new JournalRunStateStore(second.journal) });
    expect(after.recover(second.recovered.states)).toEqual({ cooling: 0, resumed: 1, interrupted: 0, abandoned: 0 });
    await after.drain();
    // a acted before the restart: not again; b, which was cut short, is called.
    expect([c2, a2, b2].map((p) => p.calls.length)).toEqual([0, 0, 1]);
    expect(after.groups()).toMatchObject([{ phase: 'cooling' }]);

    // A restart whose flow no longer calls the plugin a run was to go on with gives the run up, naming it.
    const third = await StateJournal.open(path);
    const { engine: without } = engineFor(spotFlow('', '[c, a]'), [scripted('c'), scripted('a')], undefined, undefined, { store: new JournalRunStateStore(third.journal) });
    const run = { event: alert('Spot', { instance_id: 'i-2' }), attributes: {}, receivedAt: 1, next: 1, at: { plugin: 'b', occurrence: 0 }, attempt: 2, restarts: 0 };
    expect(without.recover([{ key: 'k2', flow: 'spot', phase: 'retrying', eventId: 'e2', since: 1, run }])).toEqual({ cooling: 0, resumed: 0, interrupted: 0, abandoned: 1 });
    expect(without.recentRuns()).toMatchObject([{ outcome: 'failed', error: 'not resumed: flow spot no longer calls b, the plugin it was to go on with' }]);
    await third.journal.close();
    await second.journal.close();
  });

  it('a run cut short at the second b of [b, a, b] goes on after a restart on [b, a, b, a] at that b, and one on [b, a] is given up: a never acts twice', async () => {
    // As the journal has it: b and a acted, the second b was cut short.
    const run = { event: alert('Spot', { instance_id: 'i-1' }), attributes: {}, receivedAt: 1, next: 2, at: { plugin: 'b', occurrence: 1, passed: ['b', 'a'] }, attempt: 1, restarts: 0 };
    const restartOn = async (plugins: string) => {
      const { journal } = await StateJournal.open(join(mkdtempSync(join(tmpdir(), 'hollowtrees-resume-')), 'state.jsonl'));
      const [a, b] = [scripted('a'), scripted('b')];
      const { engine } = engineFor(spotFlow('', plugins), [a, b], undefined, undefined, { store: new JournalRunStateStore(journal) });
      const recovery = engine.recover([{ key: 'k1', flow: 'spot', phase: 'running', eventId: 'e1', since: 1, run }]);
      await engine.drain();
      await journal.close();
      return { recovery, engine, calls: [a, b].map((p) => p.calls.length) };
    };
    const longer = await restartOn('[b, a, b, a]');
    expect(longer.recovery).toMatchObject({ resumed: 1, abandoned: 0 });
    expect(longer.calls).toEqual([1, 1]);
    const shorter = await restartOn('[b, a]');
    expect(shorter.recovery).toMatchObject({ resumed: 0, abandoned: 1 });
    expect(shorter.calls).toEqual([0, 0]);
    expect(shorter.engine.recentRuns()).toMatchObject([{ outcome: 'failed', error: 'not resumed: going on with b in flow spot as it is now would call a again, which the run already called' }]);
  });

  it('a later try in flight is journalled as running: a crash during it counts a restart, so a try that keeps killing core is given up', async () => {
    const clock = manualClock();
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-retry-running-')), 'state.jsonl');
    const { journal } = await StateJournal.open(path);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const a: ScriptedPlugin = scripted('a', async () => {
      if (a.calls.length === 1) throw new PluginError(Code.Unavailable, 'restarting');
      await held;
    }, 1);
    const engine = engineOn(journal, a, scripted('b'), { clock });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), clock.now());
    await vi.waitFor(() => expect(engine.groups()).toMatchObject([{ phase: 'retrying' }]));
    clock.advance(10 * 60_000);
    await vi.waitFor(() => expect(a.calls).toHaveLength(2));
    expect(await engine.commit()).toBe(true);
    const [state] = (await readJournal(path)).states;
    expect(state).toMatchObject({ phase: 'running', run: { attempt: 2 } });
    // What the restart after the last crash allowed makes of it.
    const other = await journalled();
    expect(other.engine.recover([{ ...state!, run: { ...state!.run!, restarts: MAX_RESTARTS } }])).toMatchObject({ resumed: 0, abandoned: 1 });
    await other.journal.close();
    release();
    await engine.drain();
    await journal.close();
  });

  it('a later try in flight past its first plugin shows no wait for a next try: neither the status API nor the journal has a retryAt for it', async () => {
    const clock = manualClock();
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-retry-step-')), 'state.jsonl');
    const { journal } = await StateJournal.open(path);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const a = scripted('a', () => {
      if (a.calls.length === 1) throw new PluginError(Code.Unavailable, 'restarting');
    }, 1);
    const engine = engineOn(journal, a, scripted('b', () => held), { clock });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), clock.now());
    await vi.waitFor(() => expect(engine.groups()).toMatchObject([{ phase: 'retrying', run: { retryAt: expect.any(Number) } }]));
    clock.advance(10 * 60_000);
    // The second try passed a and is in b.
    await vi.waitFor(() => expect(engine.groups()).toMatchObject([{ phase: 'running', run: { attempt: 2, next: 1 } }]));
    expect(groupView(engine.groups()[0]!)).not.toHaveProperty('retryAt');
    expect(await engine.commit()).toBe(true);
    expect((await readJournal(path)).states[0]!.run).not.toHaveProperty('retryAt');
    release();
    await engine.drain();
    await journal.close();
  });

  it('a run that was waiting for its next try is not counted as restarted, and waits for its retryAt again', async () => {
    const clock = manualClock();
    const { journal, engine, a } = await journalled({ clock });
    const run = { event: alert('Spot', { instance_id: 'i-1' }), attributes: {}, receivedAt: 1, next: 0, attempt: 2, restarts: MAX_RESTARTS, retryAt: clock.now() + 60_000 };
    expect(engine.recover([{ key: 'k1', flow: 'spot', phase: 'retrying', eventId: 'e1', since: 1, run }])).toEqual({ cooling: 0, resumed: 1, interrupted: 0, abandoned: 0 });
    expect(engine.groups()).toMatchObject([{ key: 'k1', phase: 'retrying', run: { restarts: MAX_RESTARTS } }]);
    expect(engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 1 });
    clock.advance(59_999);
    await new Promise((r) => setTimeout(r, 20));
    expect(a.calls).toHaveLength(0);
    clock.advance(1);
    await vi.waitFor(() => expect(a.calls).toHaveLength(1));
    await engine.drain();
    expect(engine.recentRuns()).toMatchObject([{ groupKey: 'k1', outcome: 'succeeded' }]);
    await journal.close();
  });

  it('at a restart: a cooldown ending now is over, a run due now starts at once, a running one counts a restart; what is given up is logged', async () => {
    const clock = manualClock();
    const { logger, lines } = capture('info');
    const { journal, engine, a } = await journalled({ clock, logger });
    const now = clock.now();
    const progress = (id: string, more: Partial<RunProgress> = {}): RunProgress => ({ event: alert('Spot', { instance_id: id }), attributes: {}, receivedAt: 1, next: 0, attempt: 1, restarts: 0, ...more });
    expect(engine.recover([
      { key: 'k-cool', flow: 'spot', phase: 'cooling', eventId: 'e0', since: now - 10, until: now },
      { key: 'k-due', flow: 'spot', phase: 'retrying', eventId: 'e1', since: 1, run: progress('i-1', { attempt: 2, retryAt: now }) },
      { key: 'k-gone', flow: 'gone', phase: 'running', eventId: 'e2', since: 1, run: progress('i-2') },
    ])).toEqual({ cooling: 0, resumed: 1, interrupted: 0, abandoned: 1 });
    await vi.waitFor(() => expect(a.calls).toHaveLength(1));
    expect(lines.find((l) => l.eventId === 'e2')).toMatchObject({ level: 'error', flow: 'gone', groupKey: 'k-gone', msg: 'run not resumed: flow gone is no longer configured' });
    await engine.drain();
    await journal.close();
  });

  it('a shutdown with a journal keeps runs waiting for their next try, and says the cut-short ones resume after the restart', async () => {
    const { logger, lines } = capture('info');
    const { journal } = await StateJournal.open(join(mkdtempSync(join(tmpdir(), 'hollowtrees-resume-')), 'state.jsonl'));
    const failing = scripted('a', () => {
      throw new PluginError(Code.Unavailable, 'down');
    }, 1);
    const engine = engineOn(journal, failing, untilCancelled('b'), { logger });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'e1'), Date.now());
    await vi.waitFor(() => expect(engine.groups()).toMatchObject([{ phase: 'retrying' }]));
    const slow = untilCancelled('b');
    const cut = engineOn(journal, scripted('a'), slow, { logger });
    cut.dispatch(alert('Spot', { instance_id: 'i-2' }, 'e2'), Date.now());
    await engine.shutdown(0);
    expect(engine.groups()).toMatchObject([{ phase: 'retrying' }]);
    expect(lines.filter((l) => l.runs !== undefined)).toEqual([]);
    await vi.waitFor(() => expect(slow.calls).toHaveLength(1));
    await cut.shutdown(0);
    expect(lines.find((l) => l.eventId === 'e2')).toMatchObject({ level: 'warn', resumesAfterRestart: true, msg: 'flow run interrupted; it resumes after the restart' });
    await journal.close();
  });

  it('a run journalled without its event (by an older version) is reported interrupted and its group freed', async () => {
    const { logger, lines } = capture('info');
    const { journal } = await StateJournal.open(join(mkdtempSync(join(tmpdir(), 'hollowtrees-resume-')), 'state.jsonl'));
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n  b: { type: grpc, address: "unused:1" }\n${flows}`, 'test.yaml', {});
    const metrics = new EngineMetrics(new Registry());
    const clock = manualClock();
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', scripted('a')], ['b', scripted('b')]]), logger, metrics, store: new JournalRunStateStore(journal), clock });
    const since = clock.now() - 5_000;
    expect(engine.recover([{ key: 'spot:{instance_id="i-1"}', flow: 'spot', phase: 'running', eventId: 'e1', since }])).toEqual({ cooling: 0, resumed: 0, interrupted: 1, abandoned: 0 });
    expect(engine.groups()).toEqual([]);
    expect(engine.recentRuns()).toEqual([{ flow: 'spot', groupKey: 'spot:{instance_id="i-1"}', eventId: 'e1', eventType: '', outcome: 'interrupted', error: 'the process stopped during the run', receivedAt: since, startedAt: since, finishedAt: clock.now(), calls: [] }]);
    expect(await counter(metrics, 'hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'interrupted' })).toBe(1);
    expect(lines.find((l) => l.eventId === 'e1')).toMatchObject({ level: 'warn', flow: 'spot', since: new Date(since).toISOString(), msg: 'run interrupted by a restart; the next event of the group runs again' });
    expect(engine.dispatch(alert('Spot', { instance_id: 'i-1' }), clock.now()).started).toBe(1);
    await engine.drain();
    await journal.close();
  });
});

describe('drop log', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('logs the first dropped event at once, then one line per interval with the count', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const log = new DropLog(logger, () => Date.now(), 10_000);
    for (let i = 0; i < 1_000; i++) log.dropped('spot', 'queue_full', { eventId: `e${i}` });
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(10_000);
    log.dropped('spot', 'queue_full', { eventId: 'late' });
    log.dropped('other', 'queue_full', { eventId: 'x' });
    expect(lines.map((l) => [l.flow, l.eventId, l.alsoDroppedSinceLastLine])).toEqual([['spot', 'e0', undefined], ['spot', 'late', 999], ['other', 'x', undefined]]);
    expect(lines.map((l) => [l.msg, l.reason])).toEqual([['event dropped: queue full', 'queue_full'], ['event dropped: queue full', 'queue_full'], ['event dropped: queue full', 'queue_full']]);
  });
});

describe('FlowEngine with a journal on a failing disk', () => {
  it('does not run the plugins of a run whose start could not be written (its sender is refused, and told it was interrupted), and says the state is not durable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-engine-'));
    const failures: number[] = [];
    // Every append goes to /dev/full, which fails with ENOSPC like a full disk.
    const disk = fullDisk();
    const { journal } = await StateJournal.open(join(dir, 'state.jsonl'), { openFile: disk.openFile, onError: (_err, lines) => failures.push(lines) });
    const a = scripted('a');
    const declared = 'plugins:\n  a: { type: grpc, address: "unused:1" }\n';
    const { config } = parseConfig(declared + spotFlow(), 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', a]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store: new JournalRunStateStore(journal) });
    const told: string[] = [];
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now(), (s) => told.push(s.outcome));
    expect(await engine.commit()).toBe(false);
    expect(engine.durable).toBe(false);
    await engine.drain();
    // Acting, it would act again on the sender's re-send after a restart that found no trace of it.
    expect(a.calls).toHaveLength(0);
    expect(told).toEqual(['interrupted']);
    expect(engine.groups()).toEqual([]);
    expect(failures.length).toBeGreaterThan(0);
    // The disk never came back: closing says what was not saved.
    await expect(journal.close()).rejects.toThrow('could not be written to the journal before closing (ENOSPC');
  });
});

describe('FlowEngine: a run that ends while the disk fails', () => {
  it('tells its source at once (its plugins acted), and its end reaches the disk with the disk, by the journal\'s own retry, no new event needed', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-engine-')), 'state.jsonl');
    const disk = fullDisk(false);
    const { journal } = await StateJournal.open(path, { openFile: disk.openFile, onError: () => {} });
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const a = scripted('a', () => blocked);
    const b = scripted('b');
    const { engine } = engineFor(spotFlow('', '[a, b]'), [a, b], undefined, undefined, { store: new JournalRunStateStore(journal) });
    const told: string[] = [];
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now(), (s) => told.push(s.outcome));
    expect(await engine.commit()).toBe(true);
    // The run is on disk and its first plugin acting when the disk fills: its step past a, and its end, cannot be written.
    disk.full = true;
    release();
    await engine.drain();
    expect([a.calls.length, b.calls.length, told]).toEqual([1, 1, ['succeeded']]);
    expect(engine.durable).toBe(false);
    // kill -9 now would resume the run from a: the file still has it running at its start.
    expect((await readJournal(path)).states).toMatchObject([{ phase: 'running', run: { next: 0 } }]);
    disk.full = false;
    for (let i = 0; !engine.durable; i++) {
      if (i > 60) throw new Error('the journal did not write again with the disk back');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await readJournal(path)).states).toMatchObject([{ phase: 'cooling' }]);
    await journal.close();
  });
});

describe('FlowEngine: metrics', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());


  it('every metric is declared with help text, and each flow\'s series exist at zero before its first event', async () => {
    const { metrics } = engineFor(spotFlow(), [scripted('a')]);
    const all = await metrics.registry.getMetricsAsJSON();
    expect(all.filter((m) => m.help === '').map((m) => m.name)).toEqual([]);
    const text = await metrics.registry.metrics();
    for (const outcome of ['succeeded', 'failed', 'retrying', 'interrupted']) {
      expect(text).toContain(`hollowtrees_flow_runs_total{flow="spot",outcome="${outcome}"} 0`);
      expect(text).toContain(`hollowtrees_flow_run_duration_seconds_count{flow="spot",outcome="${outcome}"} 0`);
    }
    expect(text).toContain('hollowtrees_receipt_to_first_plugin_call_seconds_count{flow="spot"} 0');
    for (const reason of ['queue_full', 'too_many_groups', 'shutting_down']) expect(text).toContain(`hollowtrees_events_dropped_total{flow="spot",reason="${reason}"} 0`);
    for (const name of ['events_deduplicated_total', 'runs_waiting_for_retry', 'run_retries_total', 'runs_in_progress', 'groups_cooling_down', 'queue_depth', 'queued_event_bytes']) {
      expect(text).toContain(`hollowtrees_${name}{flow="spot"} 0`);
    }
    // Latency buckets span 0.5 ms to the two-minute notice.
    const buckets = [...text.matchAll(/^hollowtrees_state_write_seconds_bucket\{le="([^"]+)"\}/gm)].map((m) => m[1]);
    expect(buckets).toEqual(['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '120', '+Inf']);
  });

  it('times a run from receipt to its first call once, counts calls by attempt up to 5+, and times calls and runs', async () => {
    // Five UNAVAILABLE answers, each after 500 ms, then OK.
    const a = scripted('a', async (_e, call) => {
      await new Promise((r) => setTimeout(r, 500));
      if (call.attempt < 6) throw new PluginError(Code.Unavailable, 'busy');
    }, 6);
    const { engine, metrics } = engineFor(spotFlow('    concurrency: 1'), [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now() - 2_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(await counter(metrics, 'hollowtrees_runs_in_progress', { flow: 'spot' })).toBe(1);
    expect(engine.pending).toBe(1);
    await vi.runAllTimersAsync();
    expect(await histogram(metrics, 'hollowtrees_receipt_to_first_plugin_call_seconds', { flow: 'spot' })).toEqual({ sum: 2, count: 1 });
    expect(await counter(metrics, 'hollowtrees_plugin_calls_total', { plugin: 'a', code: 'UNAVAILABLE', attempt: '4' })).toBe(1);
    expect(await counter(metrics, 'hollowtrees_plugin_calls_total', { plugin: 'a', code: 'UNAVAILABLE', attempt: '5+' })).toBe(1);
    expect(await counter(metrics, 'hollowtrees_plugin_calls_total', { plugin: 'a', code: 'OK', attempt: '5+' })).toBe(1);
    expect(await histogram(metrics, 'hollowtrees_plugin_call_duration_seconds', { plugin: 'a' })).toEqual({ sum: 3, count: 6 });
    // 6 × 500 ms of calls and 100 + 200 + 400 + 800 + 1000 ms of backoff.
    expect(await histogram(metrics, 'hollowtrees_flow_run_duration_seconds', { flow: 'spot', outcome: 'succeeded' })).toEqual({ sum: 5.5, count: 1 });
    expect(await counter(metrics, 'hollowtrees_flow_runs_total', { flow: 'spot', outcome: 'succeeded' })).toBe(1);
    expect(await counter(metrics, 'hollowtrees_runs_in_progress', { flow: 'spot' })).toBe(0);
    expect(engine.pending).toBe(0);
  });

  it('counts an event no flow takes, and only such an event', async () => {
    const { engine, metrics } = engineFor(spotFlow(), [scripted('a')]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    expect(await counter(metrics, 'hollowtrees_events_unmatched_total', {})).toBe(0);
    expect(engine.dispatch(alert('Other', { instance_id: 'i-1' }), Date.now())).toEqual({ matched: 0, started: 0, deduplicated: 0, dropped: [] });
    expect(await counter(metrics, 'hollowtrees_events_unmatched_total', {})).toBe(1);
    await engine.drain();
  });

  it('shows the queue depth while runs wait for a slot, and the groups cooling down and held until a sweep frees them', async () => {
    const { plugin, release } = (() => {
      let open!: () => void;
      const held = new Promise<void>((resolve) => (open = resolve));
      return { plugin: scripted('a', () => held), release: open };
    })();
    const { engine, metrics } = engineFor(spotFlow('    concurrency: 1'), [plugin]);
    for (const id of ['i-1', 'i-2', 'i-3']) engine.dispatch(alert('Spot', { instance_id: id }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(await counter(metrics, 'hollowtrees_queue_depth', { flow: 'spot' })).toBe(2);
    expect(engine.pending).toBe(3);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(await counter(metrics, 'hollowtrees_queue_depth', { flow: 'spot' })).toBe(0);
    engine.updateScrapedGauges();
    expect(await counter(metrics, 'hollowtrees_groups_cooling_down', { flow: 'spot' })).toBe(3);
    expect(await counter(metrics, 'hollowtrees_groups_held', {})).toBe(3);
    expect(engine.sweep()).toBe(0);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    engine.updateScrapedGauges();
    expect(await counter(metrics, 'hollowtrees_groups_cooling_down', { flow: 'spot' })).toBe(0);
    expect(await counter(metrics, 'hollowtrees_groups_held', {})).toBe(3);
    expect(engine.sweep()).toBe(3);
    engine.updateScrapedGauges();
    expect(await counter(metrics, 'hollowtrees_groups_held', {})).toBe(0);
  });
});

describe('FlowEngine: reload and shutdown with runs waiting for their next try', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  const retryFlow = spotFlow('    runRetry: { attempts: 2, initialBackoff: 1m, maxBackoff: 1m }');
  const unavailable = (name: string, gate?: Promise<void>): ScriptedPlugin => scripted(name, async () => {
    await gate;
    throw new PluginError(Code.Unavailable, 'restarting');
  }, 1);

  /** An engine whose one run calls `a`, which holds it until `release()` and then fails UNAVAILABLE. Its group states are `states`, for successors to share. */
  async function runHeldInFlight(logger?: Logger): Promise<{ engine: FlowEngine; states: GroupStates; release: () => void }> {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const states = new GroupStates();
    const { engine } = engineFor(retryFlow, [unavailable('a', gate)], logger, undefined, { store: states });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    return { engine, states, release };
  }
  /** An engine a reload would start on `states`, with a plugin `a` that succeeds. */
  const successorOn = (states: GroupStates, logger?: Logger): { engine: FlowEngine; a: ScriptedPlugin } => {
    const a = scripted('a');
    return { engine: engineFor(retryFlow, [a], logger, undefined, { store: states }).engine, a };
  };

  it('a run waiting for its next try moves to the engine a reload starts, keeping its group and its bytes, and runs there when due', async () => {
    const changes: GroupChange[] = [];
    const states = new GroupStates((change) => changes.push(change));
    const heldBytes = new HeldBytes();
    const before = engineFor(retryFlow, [unavailable('a')], undefined, undefined, { store: states, heldBytes });
    before.engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(before.engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 1 });
    const bytes = heldBytes.total;
    expect(bytes).toBeGreaterThan(0);
    expect(await counter(before.metrics, 'hollowtrees_run_retries_total', { flow: 'spot' })).toBe(1);
    const written = changes.length;

    const a = scripted('a');
    const after = engineFor(retryFlow, [a], undefined, undefined, { store: states, heldBytes });
    await before.engine.retire(after.engine);
    // The group's state is shared: handing the run over changes nothing on disk.
    expect(changes).toHaveLength(written);
    expect(before.engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 0 });
    expect(await counter(before.metrics, 'hollowtrees_runs_waiting_for_retry', { flow: 'spot' })).toBe(0);
    expect(after.engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 1, heldBytes: bytes });
    expect(heldBytes.total).toBe(bytes);
    expect(after.engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'again'), Date.now()).deduplicated).toBe(1);

    await vi.advanceTimersByTimeAsync(59_999);
    expect(a.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.calls).toHaveLength(1);
    await after.engine.drain();
    expect(after.engine.groups()).toMatchObject([{ phase: 'cooling' }]);
    expect(heldBytes.total).toBe(0);
  });

  it('a run still calling plugins when a reload comes, and failing on a retryable code, is tried again by the new engine', async () => {
    const before = await runHeldInFlight();
    const after = successorOn(before.states);
    const retired = before.engine.retire(after.engine);
    before.release();
    await retired;
    expect(after.engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 1 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(after.a.calls).toHaveLength(1);
    await after.engine.drain();
    expect(after.engine.recentRuns()).toMatchObject([{ outcome: 'succeeded' }]);
  });

  it('a reload keeps counting the old engine\'s run in flight in hollowtrees_runs_in_progress', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const states = new GroupStates();
    const before = engineFor(spotFlow(), [scripted('a', () => gate)], undefined, undefined, { store: states });
    before.engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(await counter(before.metrics, 'hollowtrees_runs_in_progress', { flow: 'spot' })).toBe(1);
    // The app's reload: one metrics registry for both engines.
    const after = engineFor(spotFlow(), [scripted('a')], undefined, undefined, { store: states, metrics: before.metrics });
    const retired = before.engine.retire(after.engine);
    expect(await counter(before.metrics, 'hollowtrees_runs_in_progress', { flow: 'spot' })).toBe(1);
    release();
    await retired;
    expect(await counter(before.metrics, 'hollowtrees_runs_in_progress', { flow: 'spot' })).toBe(0);
  });

  it('after two reloads, a run of the first engine that fails on a retryable code is tried again by the last', async () => {
    const first = await runHeldInFlight();
    const second = successorOn(first.states);
    const third = successorOn(first.states);
    const firstRetired = first.engine.retire(second.engine);
    const secondRetired = second.engine.retire(third.engine);
    first.release();
    await Promise.all([firstRetired, secondRetired]);
    expect(third.engine.flowStatus()[0]).toMatchObject({ waitingForRetry: 1 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(second.a.calls).toHaveLength(0);
    expect(third.a.calls).toHaveLength(1);
  });

  it('after two reloads, the last engine counts the first engine\'s run in flight in its status, and a shutdown waits for that run, once the engine between them drained', async () => {
    const { logger, lines } = capture('info');
    const first = await runHeldInFlight(logger);
    const second = successorOn(first.states, logger);
    const third = successorOn(first.states, logger);
    const retired = Promise.all([first.engine.retire(second.engine), second.engine.retire(third.engine)]);
    // The second engine holds no run of its own: drained, it still passes the first engine's on.
    await vi.advanceTimersByTimeAsync(0);
    expect(third.engine.flowStatus()[0]).toMatchObject({ running: 1 });
    // The app's shutdown: the current engine and those still retiring.
    const stopped = Promise.all([third, second, first].map(({ engine }) => engine.shutdown(1_000)));
    await vi.advanceTimersByTimeAsync(0);
    first.release();
    await Promise.all([retired, stopped]);
    expect(third.engine.flowStatus()[0]).toMatchObject({ running: 0, waitingForRetry: 0 });
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ runs: 1, msg: 'runs waiting for a retry are lost: without state.file nothing survives the restart' });
  });

  it('a run that fails on a retryable code after the engine a reload started has shut down does not start again: it is left to the journal', async () => {
    const { logger, lines } = capture('info');
    const before = await runHeldInFlight(logger);
    const after = successorOn(before.states, logger);
    // A reload, then a shutdown while the old engine still drains: the app shuts both down.
    const retired = before.engine.retire(after.engine);
    const stoppedAfter = after.engine.shutdown(1_000);
    const stopped = before.engine.shutdown(1_000);
    before.release();
    await Promise.all([retired, stopped, stoppedAfter]);
    expect(after.engine.pending).toBe(0);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(after.a.calls).toHaveLength(0);
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ runs: 1, msg: 'runs waiting for a retry are lost: without state.file nothing survives the restart' });
  });

  it('after a reload the queue depth still counts the runs the old engine holds, and a flow the reload took out stops showing its cooldowns once they end', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const states = new GroupStates();
    const drainFlow = `
  drain:
    allowedEvents: [prometheus.server.alert.Drain]
    groupBy: [instance_id]
    cooldown: 5m
    plugins: [b]
`;
    const before = engineFor(spotFlow(`    concurrency: 1${drainFlow}`), [scripted('a', () => gate), scripted('b')], undefined, undefined, { store: states });
    for (const id of ['i-1', 'i-2', 'i-3']) before.engine.dispatch(alert('Spot', { instance_id: id }), Date.now());
    before.engine.dispatch(alert('Drain', { instance_id: 'i-9' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(await counter(before.metrics, 'hollowtrees_queue_depth', { flow: 'spot' })).toBe(2);
    expect(await counter(before.metrics, 'hollowtrees_groups_cooling_down', { flow: 'drain' })).toBe(1);
    // The app's reload: one registry, one store; the new configuration has no drain flow.
    const after = engineFor(spotFlow('    concurrency: 1'), [scripted('a')], undefined, undefined, { store: states, metrics: before.metrics });
    const retired = before.engine.retire(after.engine);
    expect(await counter(before.metrics, 'hollowtrees_queue_depth', { flow: 'spot' })).toBe(2);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(await counter(before.metrics, 'hollowtrees_groups_cooling_down', { flow: 'drain' })).toBe(0);
    release();
    await retired;
    expect(await counter(before.metrics, 'hollowtrees_queue_depth', { flow: 'spot' })).toBe(0);
  });

  it('a reload never runs more of a flow at once than its concurrency: the new engine\'s runs wait for the old one\'s, queued ones first', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const shared = { store: new GroupStates(), slots: new FlowSlots() };
    const order: string[] = [];
    const held = scripted('a', (event) => {
      order.push(`old ${event.id}`);
      return event.id === 'i-1' ? gate : undefined;
    });
    const before = engineFor(spotFlow('    concurrency: 1'), [held], undefined, undefined, shared);
    for (const id of ['i-1', 'i-2']) before.engine.dispatch(alert('Spot', { instance_id: id }, id), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    const a = scripted('a', (event) => void order.push(`new ${event.id}`));
    const after = engineFor(spotFlow('    concurrency: 1'), [a], undefined, undefined, { ...shared, metrics: before.metrics });
    const retired = before.engine.retire(after.engine);
    after.engine.dispatch(alert('Spot', { instance_id: 'i-3' }, 'i-3'), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    // i-1 still runs on the old engine (concurrency 1): i-3 waits, as does i-2 queued before it.
    expect(order).toEqual(['old i-1']);
    // The status counts the old engine's runs too: i-1 running, i-2 and i-3 queued.
    expect(after.engine.flowStatus()[0]).toMatchObject({ running: 1, queued: 2 });
    release();
    await retired;
    await after.engine.drain();
    expect(order).toEqual(['old i-1', 'old i-2', 'new i-3']);
  });

  /**
   * A run of the flow [a, b] whose b failed on a retryable code, so that it waits to go on from b
   * (index 1), handed to an engine a reload starts with `plugins`; resolves once that try is over.
   */
  async function reloadedWhileWaitingAtB(plugins: string, built: ScriptedPlugin[]): Promise<FlowEngine> {
    const flow = (list: string): string => spotFlow('    runRetry: { attempts: 2, initialBackoff: 1m, maxBackoff: 1m }', list);
    const before = engineFor(flow('[a, b]'), [scripted('a'), unavailable('b')]);
    before.engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(before.engine.groups()).toMatchObject([{ phase: 'retrying', run: { next: 1 } }]);
    const after = engineFor(flow(plugins), built, undefined, undefined, { store: before.engine.states });
    await before.engine.retire(after.engine);
    await vi.advanceTimersByTimeAsync(60_000);
    await after.engine.drain();
    return after.engine;
  }

  it('a reload that changes a flow\'s plugins goes on with the plugin that failed, found by name, not by its old position', async () => {
    // A step dropped in front of b: index 1 is past the end.
    const b = scripted('b');
    const after = await reloadedWhileWaitingAtB('[b]', [b]);
    expect(b.calls).toHaveLength(1);
    expect(after.recentRuns()[0]).toMatchObject({ outcome: 'succeeded', calls: [{ plugin: 'b' }] });
  });

  it('a reload that adds a step in front of the plugin that failed does not call again what the run already did', async () => {
    const [c, a, b] = [scripted('c'), scripted('a'), scripted('b')];
    await reloadedWhileWaitingAtB('[c, a, b]', [c, a, b]);
    expect(a.calls).toHaveLength(0);
    expect(b.calls).toHaveLength(1);
  });

  it('a reload that lists the failed plugin twice, before and after what the run already did, goes on at the later one: nothing acts twice', async () => {
    const [a, b] = [scripted('a'), scripted('b')];
    const after = await reloadedWhileWaitingAtB('[b, a, b]', [a, b]);
    expect(a.calls).toHaveLength(0);
    expect(b.calls).toHaveLength(1);
    expect(after.groups()).toMatchObject([{ phase: 'cooling' }]);
  });

  it('a reload after which the failed plugin comes only before what the run already did fails the run, naming the plugin that would act twice', async () => {
    const [a, b] = [scripted('a'), scripted('b')];
    const after = await reloadedWhileWaitingAtB('[b, a]', [a, b]);
    expect([a.calls.length, b.calls.length]).toEqual([0, 0]);
    expect(after.groups()).toEqual([]);
    expect(after.recentRuns()[0]).toMatchObject({ outcome: 'failed', error: 'not resumed: going on with b in flow spot as it is now would call a again, which the run already called' });
  });

  it('a reload that takes out the plugin a waiting run was to go on with fails the run, saying so, and frees its group', async () => {
    const a = scripted('a');
    const after = await reloadedWhileWaitingAtB('[a]', [a]);
    expect(a.calls).toHaveLength(0);
    expect(after.groups()).toEqual([]);
    expect(after.recentRuns()[0]).toMatchObject({ outcome: 'failed', error: 'not resumed: flow spot no longer calls b, the plugin it was to go on with' });
  });

  it('a shutdown waits for a run whose retry comes due during its grace period, though that run\'s flow was idle when the shutdown began', async () => {
    const a = scripted('a', async () => {
      if (a.calls.length === 1) throw new PluginError(Code.Unavailable, 'restarting');
      await new Promise((resolve) => setTimeout(resolve, 180_000));
    }, 1);
    const b = scripted('b', () => new Promise((resolve) => setTimeout(resolve, 120_000)));
    const { engine } = engineFor(`${retryFlow}
  drain:
    allowedEvents: [prometheus.server.alert.Drain]
    groupBy: [instance_id]
    plugins: [b]
`, [a, b]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    engine.dispatch(alert('Drain', { instance_id: 'i-2' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    let stopped = false;
    void engine.shutdown(600_000).then(() => (stopped = true));
    // At 1 min the retry starts (3 min long); at 2 min the other flow's run ends.
    await vi.advanceTimersByTimeAsync(150_000);
    expect(a.calls).toHaveLength(2);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(90_000);
    expect(stopped).toBe(true);
    expect(engine.recentRuns().map((r) => `${r.flow} ${r.outcome}`)).toEqual(['spot succeeded', 'drain succeeded', 'spot retrying']);
  });

  it('without a journal, a shutdown loses runs waiting for their next try, frees their groups and says how many', async () => {
    const { logger, lines } = capture('info');
    const a = unavailable('a');
    const { engine, metrics } = engineFor(retryFlow, [a], logger);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    engine.dispatch(alert('Spot', { instance_id: 'i-2' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(engine.pending).toBe(2);
    await engine.shutdown(1_000);
    expect(engine.groups()).toEqual([]);
    expect(engine.pending).toBe(0);
    expect(await counter(metrics, 'hollowtrees_runs_waiting_for_retry', { flow: 'spot' })).toBe(0);
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ runs: 2, msg: 'runs waiting for a retry are lost: without state.file nothing survives the restart' });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(a.calls).toHaveLength(2);
  });

  it('without a journal, a run that fails on a retryable code during the shutdown grace is counted among the lost', async () => {
    const { logger, lines } = capture('info');
    const { engine, release } = await runHeldInFlight(logger);
    const stopped = engine.shutdown(1_000);
    release();
    await stopped;
    expect(engine.groups()).toEqual([]);
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ runs: 1, msg: 'runs waiting for a retry are lost: without state.file nothing survives the restart' });
  });

  it('logs how each run ended, with what an operator needs to follow it', async () => {
    const { logger, lines } = capture('info');
    const ok = scripted('a', () => ({ attributes: { instance_id: 'i-other' } }));
    const { engine } = engineFor(spotFlow(), [ok], logger);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'e1'), Date.now() - 1_000);
    await engine.drain();
    const base = { flow: 'spot', groupKey: 'spot:{instance_id="i-1"}', eventId: 'e1', pluginCalls: 1, runAttempt: 1, durationMs: 0 };
    expect(lines.filter((l) => l.eventId === 'e1').map(({ level, msg, outcome, ignoredAttributes }) => ({ level, msg, outcome, ignoredAttributes }))).toEqual([
      { level: 'warn', msg: 'plugins returned attributes that would change the event\'s own labels; they were ignored', outcome: 'succeeded', ignoredAttributes: ['instance_id'] },
      { level: 'info', msg: 'flow run succeeded', outcome: 'succeeded', ignoredAttributes: undefined },
    ]);
    expect(lines.find((l) => l.msg === 'flow run succeeded')).toMatchObject(base);

    const retrying = engineFor(retryFlow, [unavailable('a')], logger).engine;
    retrying.dispatch(alert('Spot', { instance_id: 'i-2' }, 'e2'), Date.now());
    await vi.runAllTimersAsync();
    expect(lines.filter((l) => l.eventId === 'e2').map(({ level, msg, runAttempt, retryAt, error }) => ({ level, msg, runAttempt, retryAt, error }))).toEqual([
      { level: 'warn', msg: 'flow run failed on a retryable code; it will be tried again', runAttempt: 1, retryAt: '2026-11-25T10:01:00.000Z', error: 'a: UNAVAILABLE: restarting' },
      { level: 'error', msg: 'flow run failed', runAttempt: 2, retryAt: undefined, error: 'a: UNAVAILABLE: restarting' },
    ]);

    const cut = engineFor(spotFlow(), [untilCancelled('a')], logger).engine;
    cut.dispatch(alert('Spot', { instance_id: 'i-3' }, 'e3'), Date.now());
    const stopped = cut.shutdown(10);
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
    expect(lines.find((l) => l.eventId === 'e3')).toMatchObject({ level: 'warn', msg: 'flow run interrupted; without state.file it is lost', resumesAfterRestart: false, outcome: 'interrupted' });
    // Nothing was waiting for a retry, so nothing is said to be lost.
    expect(lines.filter((l) => l.runs !== undefined)).toEqual([]);
  });
});

describe('FlowEngine: edges', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-25T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  const running = (key: string, id: string, at: Partial<RunProgress> = {}): GroupState => ({
    key, flow: 'spot', phase: 'running', eventId: id, since: Date.now(),
    run: { event: alert('Spot', { instance_id: id }, id), attributes: {}, receivedAt: Date.now() - 1_000, next: 0, attempt: 1, restarts: 0, ...at },
  });

  it('refuses to build a flow whose plugin it was not given, naming both', () => {
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow()}`, 'test.yaml', {});
    expect(() => new FlowEngine({ flows: config.flows, plugins: new Map(), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()) })).toThrow('flow spot: plugin a is not built');
  });

  it('without a journal, what was accepted counts as durable at once', async () => {
    const { engine } = engineFor(spotFlow(), [scripted('a')]);
    expect(engine.durable).toBe(true);
    expect(await engine.commit()).toBe(true);
  });

  it('refreshes the cooling gauge when the registry is scraped', async () => {
    const { engine, metrics } = engineFor(spotFlow(), [scripted('a')]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await engine.drain();
    expect(await metrics.registry.metrics()).toContain('hollowtrees_groups_cooling_down{flow="spot"} 1');
  });

  it('refreshes the scraped gauges once per scrape, and for a scrape of one of them alone', async () => {
    const { metrics } = engineFor(spotFlow(), [scripted('a')]);
    let refreshes = 0;
    metrics.beforeCollect(() => void refreshes++);
    await metrics.registry.metrics();
    expect(refreshes).toBe(1);
    await metrics.registry.getSingleMetricAsString('hollowtrees_queue_depth');
    await metrics.registry.metrics();
    expect(refreshes).toBe(3);
  });

  it('logs each drop with the group and event, whatever the reason', async () => {
    const { logger, lines } = capture('warn');
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow('    concurrency: 1\n    queueSize: 1')}`, 'test.yaml', {});
    const engine = (more: Partial<FlowEngineOptions> = {}): FlowEngine =>
      new FlowEngine({ flows: config.flows, plugins: new Map([['a', scripted('a', () => new Promise(() => {}))]]), logger, metrics: new EngineMetrics(new Registry()), ...more });
    const send = (to: FlowEngine, ids: string[]): void => ids.forEach((id) => to.dispatch(alert('Spot', { instance_id: id }, id), Date.now()));
    send(engine(), ['i-0', 'i-1', 'q-2']);
    send(engine({ store: new GroupStates(undefined, 1) }), ['i-0', 'g-1']);
    send(engine({ heldBytes: new HeldBytes(10) }), ['b-0']);
    const stopping = engine();
    void stopping.shutdown(0);
    send(stopping, ['s-0']);
    expect(lines.map(({ msg, reason, groupKey, eventId, queueSize, bytes }) => ({ msg, reason, groupKey, eventId, queueSize, bytes }))).toEqual([
      { msg: 'event dropped: queue full', reason: 'queue_full', groupKey: 'spot:{instance_id="q-2"}', eventId: 'q-2', queueSize: 1, bytes: undefined },
      { msg: 'event dropped: too many groups', reason: 'too_many_groups', groupKey: 'spot:{instance_id="g-1"}', eventId: 'g-1', queueSize: undefined, bytes: undefined },
      { msg: 'event dropped: queue full', reason: 'queue_full', groupKey: 'spot:{instance_id="b-0"}', eventId: 'b-0', queueSize: undefined, bytes: approximateBytes(alert('Spot', { instance_id: 'b-0' }, 'b-0')) },
      { msg: 'event dropped: shutting down', reason: 'shutting_down', groupKey: 'spot:{instance_id="s-0"}', eventId: 's-0', queueSize: undefined, bytes: undefined },
    ]);
  });

  it('names the global byte limit only when that is what an event would pass', () => {
    const event = (i: number): CloudEvent => alert('Spot', { instance_id: `i-${i}` }, 'same-size');
    const bytes = approximateBytes(event(1));
    const { config } = parseConfig(`plugins:\n  a: { type: grpc, address: "unused:1" }\n${spotFlow('    concurrency: 1')}`, 'test.yaml', {});
    const flows = { spot: { ...config.flows.spot!, queueBytes: Math.floor(1.5 * bytes) } };
    // Two events fill the global limit exactly: the second is refused by the flow's own limit, and says so.
    const engine = new FlowEngine({ flows, plugins: new Map([['a', scripted('a', () => new Promise(() => {}))]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), heldBytes: new HeldBytes(2 * bytes) });
    expect(engine.dispatch(event(1), Date.now()).started).toBe(1);
    expect(engine.dispatch(event(2), Date.now()).dropped[0]!.detail).toBe(`it holds ${bytes} bytes of events (queueBytes)`);
  });

  it('logs a deduplicated event at debug while its group waits for its next try', async () => {
    const { logger, lines } = capture();
    const a = scripted('a', () => {
      throw new PluginError(Code.Unavailable, 'down');
    }, 1);
    const { engine } = engineFor(spotFlow('    runRetry: { attempts: 2, initialBackoff: 1m }'), [a], logger);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'first'), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }, 'copy'), Date.now());
    expect(lines.find((l) => l.eventId === 'copy')).toMatchObject({ phase: 'retrying', heldBy: 'first', msg: 'event deduplicated: a run of its group waits for its next try' });
  });

  it('counts runs waiting for their next try per flow', async () => {
    const a = scripted('a', () => {
      throw new PluginError(Code.Unavailable, 'down');
    }, 1);
    const flows = `
flows:
  one: { allowedEvents: [prometheus.server.alert.Spot], groupBy: [instance_id], plugins: [a], runRetry: { attempts: 2, initialBackoff: 1m } }
  two: { allowedEvents: [prometheus.server.alert.Spot], groupBy: [instance_id], plugins: [a], runRetry: { attempts: 2, initialBackoff: 1m } }
`;
    const { engine, metrics } = engineFor(flows, [a]);
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(engine.flowStatus().map((f) => [f.name, f.waitingForRetry])).toEqual([['one', 1], ['two', 1]]);
    expect(await counter(metrics, 'hollowtrees_runs_waiting_for_retry', { flow: 'one' })).toBe(1);
    expect(await counter(metrics, 'hollowtrees_runs_waiting_for_retry', { flow: 'two' })).toBe(1);
    await engine.shutdown(0);
  });

  it('times receipt to first call only for a run\'s first try: not for a later try, a resumed run, or one that goes on past a plugin', async () => {
    const a = scripted('a');
    const { engine, metrics } = engineFor(spotFlow('', '[a, a2]'), [a, scripted('a2')]);
    engine.resume([running('k1', 'i-1', { next: 1 }), running('k2', 'i-2', { attempt: 2 }), running('k3', 'i-3', { restarts: 1 })]);
    // Only a run's first try is timed: here the one dispatched fresh, received 1 s ago.
    engine.dispatch(alert('Spot', { instance_id: 'i-4' }), Date.now() - 1_000);
    await engine.drain();
    expect(a.calls).toHaveLength(3);
    expect(await histogram(metrics, 'hollowtrees_receipt_to_first_plugin_call_seconds', { flow: 'spot' })).toEqual({ sum: 1, count: 1 });
  });

  it('resumes every run taken back from the journal, past the queue size, and shows them queued', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const a = scripted('a', () => gate);
    const { engine, metrics } = engineFor(spotFlow('    concurrency: 1\n    queueSize: 1'), [a]);
    expect(engine.recover([running('k1', 'i-1'), running('k2', 'i-2'), running('k3', 'i-3')])).toMatchObject({ resumed: 3 });
    expect(engine.groups().map((g) => [g.key, g.phase, g.run?.restarts])).toEqual([['k1', 'running', 1], ['k2', 'running', 1], ['k3', 'running', 1]]);
    expect(await counter(metrics, 'hollowtrees_queue_depth', { flow: 'spot' })).toBe(2);
    release();
    await engine.drain();
    expect(a.calls).toHaveLength(3);
  });
});
