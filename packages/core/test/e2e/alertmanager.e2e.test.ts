/**
 * End to end with a real Prometheus and a real Alertmanager (Debian packages
 * `prometheus`, `prometheus-alertmanager`): Prometheus evaluates a rule that
 * fires at once and sends it to Alertmanager; Alertmanager's webhook receiver
 * (payload version 4, `send_resolved: true`) points at core's
 * `/webhook/alertmanager` and repeats the notification every ~1 s
 * (`repeat_interval: 1s`). Core runs the flow into a real gRPC plugin.
 */
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { closeEach, outputReport, pollUntil, startAlertmanager, tempDir, type Spawned } from '@hollowtrees/testkit';
import { startRecordingPlugin, type RecordingPlugin } from '../support/recording-plugin.js';
import { startTestCore, type TestCore } from '../support/start-core.js';
import { ALERTMANAGER, PROMETHEUS, coreLogTail, coreState, counterSum, describeWithBinaries, startPrometheus } from './real-binaries.js';
import { coreConfig, expectOneSpotRun, expectResolvedRuns, expectSpotEvent, prometheusYml, rulesYml, waitForSpotRepeats } from './spot-scenario.js';

const SPOT_LABELS = { instance_id: 'i-0e2e0000000000a1', node: 'ip-10-0-9-10.eu-west-1.compute.internal', cluster_name: 'e2e', severity: 'critical' };
const FLAPPING_LABELS = { instance_id: 'i-0e2e0000000000a2', cluster_name: 'e2e' };

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
    const startedAm = await startAlertmanager(bins[ALERTMANAGER.command]!, dir.path, alertmanagerYml(core.port));
    am = startedAm.proc;
    amPort = startedAm.port;

    const startedProm = await startPrometheus(bins[PROMETHEUS.command]!, dir.path, {
      prometheusYml: prometheusYml(amPort),
      rulesYml: rulesYml(SPOT_LABELS, FLAPPING_LABELS),
    });
    prom = startedProm.proc;
    promPort = startedProm.port;
  });

  // Each step runs even when an earlier one (or beforeAll) failed.
  afterAll(() => closeEach([() => prom?.kill(), () => am?.kill(), () => core?.close(), () => rec?.close(), () => dir?.remove()]));

  it('repeated webhook notifications of one firing alert start exactly one plugin run, with the alert as a CloudEvent', async () => {
    onTestFailed(async () => console.error(await report()));
    // The first notification plus at least two repeats, all deduplicated into the first run.
    await waitForSpotRepeats(core!, { source: 'webhook', received: 3, deduplicated: 2 }, report);
    const spotCall = await expectOneSpotRun(core!, rec!.calls);
    // The webhook's externalURL (Alertmanager's) is the source.
    const data = await expectSpotEvent(spotCall, { source: `http://127.0.0.1:${amPort}`, promPort, labels: SPOT_LABELS });
    // Alertmanager's fingerprint is kept.
    expect(data.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    // Nothing Alertmanager sent was refused.
    expect(await counterSum(core!.metrics.receiver.requestsRejected, {})).toBe(0);
  });

  it('an alert that resolves reaches a flow of prometheus.server.alert.*.resolved once per occurrence', async () => {
    onTestFailed(async () => console.error(await report()));
    await pollUntil(() => rec!.calls.some((c) => c.flow === 'resolved'), 15_000, report);
    expectResolvedRuns(rec!.calls, { source: `http://127.0.0.1:${amPort}`, labels: FLAPPING_LABELS });
  });
});
