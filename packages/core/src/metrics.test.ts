import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../test/support/start-core.js';

/** The value of one sample in Prometheus text format, e.g. `name{a="b"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics after a scripted scenario', () => {
  let plugin: RecordingPlugin;
  let core: TestCore;
  let text: string;

  beforeAll(async () => {
    plugin = await startRecordingPlugin((event, ctx) => {
      const id = (event.data as { labels: { instance_id: string } }).labels.instance_id;
      if (id === 'i-missing') throw new PluginError(Code.NotFound, 'no such node');
      if (id === 'i-flaky' && ctx.attempt === 1) throw new PluginError(Code.Unavailable, 'busy');
    });
    core = await startTestCore(`
plugins:
  drain: { type: grpc, address: "${plugin.address}", retry: { attempts: 3, initialBackoff: 10ms } }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.Spot]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [drain]
`);
    const spot = (instance: string) => ({ labels: { alertname: 'Spot', instance_id: instance } });
    // 4 accepted on v2 (one a duplicate), 1 on the webhook, 2 unmatched (one resolved), 2 refused.
    await core.post('/api/v2/alerts', [spot('i-ok'), spot('i-ok'), spot('i-missing'), spot('i-flaky')]);
    await core.post('/webhook/alertmanager', { version: '4', alerts: [{ ...spot('i-hook'), status: 'firing' }] });
    await core.post('/api/v2/alerts', [{ labels: { alertname: 'Other' } }, { labels: { alertname: 'Gone' }, endsAt: '2020-01-01T00:00:00Z' }]);
    await core.post('/api/v2/alerts', 'nope');
    await core.post('/api/v2/alerts', [{ labels: {} }]);
    for (let i = 0; i < 200 && core.engine.recentRuns().length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    text = await (await fetch(`${core.url}/metrics`)).text();
  });
  afterAll(async () => {
    await core.close();
    await plugin.close();
  });

  it('counts events received by source and type family: the alert name a sender chooses is never a label value', () => {
    expect(sample(text, 'hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*"}')).toBe(5);
    expect(sample(text, 'hollowtrees_events_received_total{source="webhook",type="prometheus.server.alert.*"}')).toBe(1);
    expect(sample(text, 'hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*.resolved"}')).toBe(1);
    // The other paths and families are there at 0 (a fixed set); only these three counted anything.
    expect(text.split('\n').filter((l) => l.startsWith('hollowtrees_events_received_total{') && !l.endsWith(' 0'))).toHaveLength(3);
    expect(sample(text, 'hollowtrees_events_unmatched_total')).toBe(2);
  });

  it('counts rejected requests by reason', () => {
    expect(sample(text, 'hollowtrees_requests_rejected_total{reason="bad_json"}')).toBe(1);
    expect(sample(text, 'hollowtrees_requests_rejected_total{reason="bad_data"}')).toBe(1);
  });

  it('counts runs by outcome, deduplicated events, and plugin calls by code and attempt', () => {
    expect(sample(text, 'hollowtrees_flow_runs_total{flow="spot",outcome="succeeded"}')).toBe(3);
    expect(sample(text, 'hollowtrees_flow_runs_total{flow="spot",outcome="failed"}')).toBe(1);
    expect(sample(text, 'hollowtrees_flow_runs_total{flow="spot",outcome="interrupted"}')).toBe(0);
    expect(sample(text, 'hollowtrees_events_deduplicated_total{flow="spot"}')).toBe(1);
    expect(sample(text, 'hollowtrees_events_dropped_total{flow="spot",reason="queue_full"}')).toBe(0);
    expect(sample(text, 'hollowtrees_plugin_calls_total{plugin="drain",code="OK",attempt="1"}')).toBe(2);
    expect(sample(text, 'hollowtrees_plugin_calls_total{plugin="drain",code="UNAVAILABLE",attempt="1"}')).toBe(1);
    expect(sample(text, 'hollowtrees_plugin_calls_total{plugin="drain",code="OK",attempt="2"}')).toBe(1);
    expect(sample(text, 'hollowtrees_plugin_calls_total{plugin="drain",code="NOT_FOUND",attempt="1"}')).toBe(1);
  });

  it('observes the latency histograms', () => {
    expect(sample(text, 'hollowtrees_receipt_to_first_plugin_call_seconds_count{flow="spot"}')).toBe(4);
    expect(sample(text, 'hollowtrees_plugin_call_duration_seconds_count{plugin="drain"}')).toBe(5);
    expect(sample(text, 'hollowtrees_flow_run_duration_seconds_count{flow="spot",outcome="succeeded"}')).toBe(3);
  });

  it('reports the gauges: nothing in progress or queued, three groups cooling down', () => {
    expect(sample(text, 'hollowtrees_runs_in_progress{flow="spot"}')).toBe(0);
    expect(sample(text, 'hollowtrees_queue_depth{flow="spot"}')).toBe(0);
    expect(sample(text, 'hollowtrees_groups_cooling_down{flow="spot"}')).toBe(3);
  });

  it('has no instance or event ids in any label', () => {
    expect(text).not.toMatch(/i-ok|i-missing|i-flaky|i-hook/);
  });
});
