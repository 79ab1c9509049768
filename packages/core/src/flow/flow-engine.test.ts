import { closeSync, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, PluginError, type CloudEvent, type PluginResponse } from '@hollowtrees/grpcplugin';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config/load-config.js';
import { CoreMetrics } from '../metrics.js';
import type { ActionPlugin, PluginCall } from '../plugins/action-plugin.js';
import { DropLog } from './drop-log.js';
import { FlowEngine } from './flow-engine.js';
import { StateJournal } from './state-journal.js';

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

function engineFor(yaml: string, plugins: ScriptedPlugin[]): { engine: FlowEngine; metrics: CoreMetrics } {
  // Declared so validation knows the names; the engine gets the scripted plugins themselves.
  const declared = `plugins:\n${plugins.map((p) => `  ${p.name}: { type: grpc, address: "unused:1" }`).join('\n')}\n`;
  const { config } = parseConfig(declared + yaml, 'test.yaml', {});
  const metrics = new CoreMetrics(new Registry());
  const engine = new FlowEngine({ flows: config.flows, plugins: new Map(plugins.map((p) => [p.name, p])), logger: pino({ level: 'silent' }), metrics, random: () => 1 });
  return { engine, metrics };
}

const counter = async (metrics: CoreMetrics, name: string, labels: Record<string, string>): Promise<number> => {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
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
    const { engine } = engineFor(spotFlow(), [a]);
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

  it('bounds concurrency per flow and counts what overflows the queue', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const a = scripted('a', () => gate);
    const { engine, metrics } = engineFor(spotFlow('').replace('cooldown: 5m', 'cooldown: 5m\n    concurrency: 2\n    queueSize: 3'), [a]);
    const results = Array.from({ length: 8 }, (_, i) => engine.dispatch(alert('Spot', { instance_id: `i-${i}` }), Date.now()));
    await vi.advanceTimersByTimeAsync(0);
    expect(a.calls).toHaveLength(2);
    expect(results.map((r) => r.started)).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(results[7]!.dropped).toEqual([{ flow: 'spot', reason: 'queue_full' }]);
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

  it('cancels every run in flight at the end of the grace period, and a queued run starting after it never calls the plugin', async () => {
    const slow = untilCancelled('a');
    const { engine } = engineFor(spotFlow('').replace('cooldown: 5m', 'cooldown: 5m\n    concurrency: 2'), [slow]);
    for (const id of ['i-1', 'i-2', 'i-3']) engine.dispatch(alert('Spot', { instance_id: id }), Date.now());
    await vi.advanceTimersByTimeAsync(0);
    expect(slow.calls).toHaveLength(2);
    const done = engine.shutdown(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    // The two calls in flight were cancelled; i-3 left the queue after the cancel and was interrupted before its call.
    expect(slow.calls.map((c) => c.call.signal?.aborted)).toEqual([true, true]);
    expect(engine.recentRuns().map((r) => [r.groupKey, r.outcome, r.calls.length])).toEqual([
      ['spot:{instance_id="i-3"}', 'interrupted', 0],
      ['spot:{instance_id="i-2"}', 'interrupted', 1],
      ['spot:{instance_id="i-1"}', 'interrupted', 1],
    ]);
    expect(engine.groups()).toEqual([]);
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
  });
});

describe('FlowEngine with a journal on a failing disk', () => {
  it('still runs the plugins and cools the group down, reporting the failed writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-engine-'));
    const failures: number[] = [];
    const { journal } = StateJournal.open(join(dir, 'state.jsonl'), { onError: (_err, lines) => failures.push(lines) });
    const internals = journal as unknown as { fd: number };
    const good = internals.fd;
    internals.fd = openSync('/dev/full', 'w');
    const a = scripted('a');
    const declared = 'plugins:\n  a: { type: grpc, address: "unused:1" }\n';
    const { config } = parseConfig(declared + spotFlow(), 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', a]]), logger: pino({ level: 'silent' }), metrics: new CoreMetrics(new Registry()), journal });
    engine.dispatch(alert('Spot', { instance_id: 'i-1' }), Date.now());
    await engine.drain();
    expect(a.calls).toHaveLength(1);
    expect(engine.groups()).toMatchObject([{ phase: 'cooling' }]);
    expect(failures.length).toBeGreaterThan(0);
    closeSync(internals.fd);
    internals.fd = good;
    await journal.close();
  });
});
