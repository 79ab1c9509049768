/**
 * End to end with a real Prometheus and a real Alertmanager (Debian packages
 * `prometheus`, `prometheus-alertmanager`): Prometheus evaluates a rule that
 * fires at once and sends it to Alertmanager; Alertmanager's webhook receiver
 * (payload version 4, `send_resolved: true`) points at core's
 * `/webhook/alertmanager` and repeats the notification every ~1 s
 * (`repeat_interval: 1s`). Core runs the flow into a real gRPC plugin.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../test-support/recording-plugin.js';
import { startTestCore, type TestCore } from '../test-support/start-core.js';
import {
  ALERTMANAGER,
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
const SPOT_LABELS = { instance_id: 'i-0e2e0000000000a1', node: 'ip-10-0-9-10.eu-west-1.compute.internal', cluster_name: 'e2e', severity: 'critical' };
const FLAPPING_LABELS = { instance_id: 'i-0e2e0000000000a2', cluster_name: 'e2e' };

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

const alertmanagerYml = (corePort: number) => `
route:
  receiver: hollowtrees
  group_by: [alertname, instance_id]
  group_wait: 0s
  group_interval: 500ms
  repeat_interval: 1s
receivers:
  - name: hollowtrees
    webhook_configs:
      - url: http://127.0.0.1:${corePort}/webhook/alertmanager
        send_resolved: true
`;

const prometheusYml = (alertmanagerPort: number) => `
global:
  evaluation_interval: 250ms
  scrape_interval: 1m
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs:
        - targets: ['127.0.0.1:${alertmanagerPort}']
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

describeWithBinaries('core with a real Alertmanager sending its webhook to it', [PROMETHEUS, ALERTMANAGER], (bins) => {
  let rec: RecordingPlugin | undefined;
  let core: TestCore | undefined;
  let am: Spawned | undefined;
  let prom: Spawned | undefined;
  let amPort = 0;
  let promPort = 0;
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;

  const report = async (): Promise<string> => `${await coreState(core, rec?.calls ?? [])}\n${coreLogTail(core)}\n${outputReport([am, prom])}`;

  beforeAll(async () => {
    rec = await startRecordingPlugin();
    core = await startTestCore(coreConfig(rec.address));
    dir = await tempDir('alertmanager-e2e');
    const dirPath = dir.path;
    await writeFile(join(dirPath, 'alertmanager.yml'), alertmanagerYml(core.port));
    const startedAm = await startOnFreePort(
      'alertmanager',
      bins[ALERTMANAGER.command]!,
      (port) => [
        `--config.file=${join(dirPath, 'alertmanager.yml')}`,
        `--storage.path=${join(dirPath, 'alertmanager-data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--web.external-url=http://127.0.0.1:${port}/`,
        '--cluster.listen-address=',
      ],
      '/-/ready',
    );
    am = startedAm.proc;
    amPort = startedAm.port;

    await writeFile(join(dirPath, 'prometheus.yml'), prometheusYml(amPort));
    await writeFile(join(dirPath, 'rules.yml'), rulesYml);
    const startedProm = await startOnFreePort(
      'prometheus',
      bins[PROMETHEUS.command]!,
      (port) => [
        `--config.file=${join(dirPath, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dirPath, 'prometheus-data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--web.external-url=http://127.0.0.1:${port}/`,
        '--rules.alert.resend-delay=1s',
      ],
      '/-/ready',
    );
    prom = startedProm.proc;
    promPort = startedProm.port;
  });

  afterAll(async () => {
    // Each step runs even when an earlier one (or beforeAll) failed.
    await prom?.kill().catch(() => {});
    await am?.kill().catch(() => {});
    await core?.close().catch(() => {});
    await rec?.close().catch(() => {});
    await dir?.remove().catch(() => {});
  });

  it('repeated webhook notifications of one firing alert start exactly one plugin run, with the alert as a CloudEvent', async () => {
    onTestFailed(async () => console.error(await report()));
    const type = `prometheus.server.alert.${SPOT}`;
    // The first notification plus at least two repeats, all deduplicated into the first run.
    await pollUntil(
      async () =>
        (await counterSum(core!.metrics.eventsReceived, { source: 'webhook', type })) >= 3 &&
        (await counterSum(core!.metrics.eventsDeduplicated, { flow: 'spot' })) >= 2,
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
    // The webhook's externalURL (Alertmanager's) is the source.
    expect(event.source).toBe(`http://127.0.0.1:${amPort}`);
    expect(event.id).toMatch(/^[0-9a-f]{32}$/);
    expect(data.labels).toEqual({ alertname: SPOT, ...SPOT_LABELS });
    expect(data.annotations).toEqual({ summary: `Spot instance ${SPOT_LABELS.instance_id} will be reclaimed` });
    expect(data.status).toBe('firing');
    // Alertmanager's fingerprint is kept.
    expect(data.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(data.generatorURL).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${promPort}/graph\\?g0\\.expr=vector%281%29`));
    // time = startsAt, which is when Prometheus' own API says the alert became active.
    expect(event.time).toBe(data.startsAt);
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`);
    const active = ((await res.json()) as { data: { alerts: Array<{ labels: Record<string, string>; activeAt: string; state: string }> } }).data.alerts;
    const spotAlert = active.find((a) => a.labels.alertname === SPOT);
    expect(spotAlert).toMatchObject({ state: 'firing' });
    expect(epochMs(event.time!)).toBe(epochMs(spotAlert!.activeAt));
    // Nothing Alertmanager sent was refused.
    expect(await counterSum(core!.metrics.requestsRejected, {})).toBe(0);
  });

  it('an alert that resolves reaches a flow of prometheus.server.alert.*.resolved once per occurrence', async () => {
    onTestFailed(async () => console.error(await report()));
    const type = `prometheus.server.alert.${FLAPPING}.resolved`;
    await pollUntil(() => rec!.calls.some((c) => c.flow === 'resolved'), 15_000, report);
    const resolvedCalls = rec!.calls.filter((c) => c.flow === 'resolved');
    for (const call of resolvedCalls) {
      expect(call.event.type).toBe(type);
      expect(call.event.source).toBe(`http://127.0.0.1:${amPort}`);
      expect(alertData(call)).toMatchObject({ status: 'resolved', labels: { alertname: FLAPPING, ...FLAPPING_LABELS } });
      expect(call.event.time).toBe(alertData(call).startsAt);
      expect(epochMs(alertData(call).endsAt)).toBeGreaterThan(epochMs(alertData(call).startsAt));
    }
    const occurrences = new Set(resolvedCalls.map((c) => alertData(c).startsAt));
    expect(resolvedCalls).toHaveLength(occurrences.size);
    expect(rec!.calls.filter((c) => c.flow === 'spot').map((c) => c.event.type)).toEqual([`prometheus.server.alert.${SPOT}`]);
  });
});
