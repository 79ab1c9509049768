/**
 * End to end with a real Prometheus (Debian package `prometheus`): Prometheus
 * evaluates a rule that fires at once and sends the alert to core as its
 * alertmanager (`POST /api/v2/alerts`), re-sending it every ~1.25 s
 * (`--rules.alert.resend-delay=1s`). Prometheus loads its alertmanager list
 * about 5 s after start (its discovery updates are throttled to 5 s), so the
 * first alert core sees comes ~5 s in. Core runs the flow into a real gRPC plugin.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../test-support/recording-plugin.js';
import { startTestCore, type TestCore } from '../test-support/start-core.js';
import {
  PROMETHEUS,
  alertData,
  coreLogTail,
  coreState,
  counterSum,
  describeWithBinaries,
  epochMs,
  outputReport,
  pollUntil,
  startOnFreePort,
  tempDir,
  type Spawned,
} from './real-binaries.js';

const SPOT = 'SpotTerminationNotice';
const FLAPPING = 'SpotRebalanceFlapping';
const SPOT_LABELS = { instance_id: 'i-0e2e000000000001', node: 'ip-10-0-9-9.eu-west-1.compute.internal', cluster_name: 'e2e', severity: 'critical' };
const FLAPPING_LABELS = { instance_id: 'i-0e2e000000000002', cluster_name: 'e2e' };

const coreConfig = (pluginAddress: string) => `
plugins:
  rec: { type: grpc, address: ${pluginAddress}, timeout: 5s }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.${SPOT}]
    groupBy: [instance_id]
    cooldown: 10m
    plugins: [rec]
  resolved:
    allowedEvents: [prometheus.server.alert.*.resolved]
    cooldown: 10m
    plugins: [rec]
`;

const prometheusYml = (corePort: number) => `
global:
  # Prometheus re-sends an alert once resend-delay (1s) has passed since the
  # last send, strictly: with 1s evaluations that is every 2s, with 250ms every 1.25s.
  evaluation_interval: 250ms
  scrape_interval: 1m
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs:
        - targets: ['127.0.0.1:${corePort}']
`;

// SpotTerminationNotice fires at once and stays firing. SpotRebalanceFlapping
// fires for 3 s out of every 6 s, so within the test it also resolves.
const rulesYml = `
groups:
  - name: e2e
    rules:
      - alert: ${SPOT}
        expr: vector(1)
        labels: ${JSON.stringify(SPOT_LABELS)}
        annotations: { summary: "Spot instance ${SPOT_LABELS.instance_id} will be reclaimed" }
      - alert: ${FLAPPING}
        expr: vector(1) and on() (vector(time() % 6) < 3)
        labels: ${JSON.stringify(FLAPPING_LABELS)}
`;

describeWithBinaries('core with a real Prometheus sending alerts to it', [PROMETHEUS], (bins) => {
  let rec: RecordingPlugin | undefined;
  let core: TestCore | undefined;
  let prom: Spawned | undefined;
  let promPort = 0;
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;

  const report = async (): Promise<string> => `${await coreState(core, rec?.calls ?? [])}\n${coreLogTail(core)}\n${outputReport([prom])}`;

  beforeAll(async () => {
    rec = await startRecordingPlugin();
    core = await startTestCore(coreConfig(rec.address));
    dir = await tempDir('prometheus-e2e');
    await writeFile(join(dir.path, 'prometheus.yml'), prometheusYml(core.port));
    await writeFile(join(dir.path, 'rules.yml'), rulesYml);
    const dirPath = dir.path;
    const started = await startOnFreePort(
      'prometheus',
      bins[PROMETHEUS.command]!,
      (port) => [
        `--config.file=${join(dirPath, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dirPath, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--web.external-url=http://127.0.0.1:${port}/`,
        '--rules.alert.resend-delay=1s',
      ],
      '/-/ready',
    );
    prom = started.proc;
    promPort = started.port;
  });

  afterAll(async () => {
    // Each step runs even when an earlier one (or beforeAll) failed.
    await prom?.kill().catch(() => {});
    await core?.close().catch(() => {});
    await rec?.close().catch(() => {});
    await dir?.remove().catch(() => {});
  });

  it('repeated re-sends of one firing alert within the cooldown start exactly one plugin run, with the alert as a CloudEvent', async () => {
    onTestFailed(async () => console.error(await report()));
    const type = `prometheus.server.alert.${SPOT}`;
    // The first send plus at least three re-sends, all deduplicated into the first run.
    await pollUntil(
      async () =>
        (await counterSum(core!.metrics.eventsReceived, { source: 'api_v2', type })) >= 4 &&
        (await counterSum(core!.metrics.eventsDeduplicated, { flow: 'spot' })) >= 3,
      15_000,
      report,
    );
    const spotCalls = rec!.calls.filter((c) => c.flow === 'spot');
    expect(spotCalls).toHaveLength(1);
    expect(core!.engine.recentRuns().filter((r) => r.flow === 'spot')).toMatchObject([{ outcome: 'succeeded', eventType: type }]);
    expect(await counterSum(core!.metrics.flowRuns, { flow: 'spot' })).toBe(1);

    const { event } = spotCalls[0]!;
    const data = alertData(spotCalls[0]!);
    expect(event.type).toBe(type);
    expect(event.specversion).toBe('1.0');
    expect(event.source).toBe(`http://127.0.0.1:${promPort}`);
    expect(event.id).toMatch(/^[0-9a-f]{32}$/);
    expect(data.labels).toEqual({ alertname: SPOT, ...SPOT_LABELS });
    expect(data.annotations).toEqual({ summary: `Spot instance ${SPOT_LABELS.instance_id} will be reclaimed` });
    expect(data.status).toBe('firing');
    expect(data.generatorURL).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${promPort}/graph\\?g0\\.expr=vector%281%29`));
    // time = startsAt, which is when Prometheus' own API says the alert became active.
    expect(event.time).toBe(data.startsAt);
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`);
    const active = ((await res.json()) as { data: { alerts: Array<{ labels: Record<string, string>; activeAt: string; state: string }> } }).data.alerts;
    const spotAlert = active.find((a) => a.labels.alertname === SPOT);
    expect(spotAlert).toMatchObject({ state: 'firing' });
    expect(epochMs(event.time!)).toBe(epochMs(spotAlert!.activeAt));

    // The metrics endpoint tells the same story.
    const metrics = await (await fetch(`${core!.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`hollowtrees_events_received_total\\{source="api_v2",type="${type.replace(/\./g, '\\.')}"\\} ([4-9]|\\d\\d+)\\b`));
    expect(metrics).toMatch(/hollowtrees_events_deduplicated_total\{flow="spot"\} ([3-9]|\d\d+)\b/);
  });

  it('an alert that resolves reaches a flow of prometheus.server.alert.*.resolved once per occurrence', async () => {
    onTestFailed(async () => console.error(await report()));
    const type = `prometheus.server.alert.${FLAPPING}.resolved`;
    await pollUntil(
      async () => rec!.calls.some((c) => c.flow === 'resolved') && (await counterSum(core!.metrics.eventsReceived, { type })) >= 2,
      15_000,
      report,
    );
    const resolvedCalls = rec!.calls.filter((c) => c.flow === 'resolved');
    for (const call of resolvedCalls) {
      expect(call.event.type).toBe(type);
      expect(alertData(call)).toMatchObject({ status: 'resolved', labels: { alertname: FLAPPING, ...FLAPPING_LABELS } });
      expect(call.event.time).toBe(alertData(call).startsAt);
      // A resolved alert's endsAt is when it resolved: after it started.
      expect(epochMs(alertData(call).endsAt)).toBeGreaterThan(epochMs(alertData(call).startsAt));
    }
    // Prometheus re-sends the resolution every second; each occurrence (startsAt) ran once.
    const occurrences = new Set(resolvedCalls.map((c) => alertData(c).startsAt));
    expect(resolvedCalls).toHaveLength(occurrences.size);
    expect(new Set(resolvedCalls.map((c) => c.event.id)).size).toBe(resolvedCalls.length);
    // The firing flow never saw the resolution, nor the flapping alert.
    expect(rec!.calls.filter((c) => c.flow === 'spot').map((c) => c.event.type)).toEqual([`prometheus.server.alert.${SPOT}`]);
  });
});
